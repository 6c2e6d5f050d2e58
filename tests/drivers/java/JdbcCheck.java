// pgjdbc through sluice: run by tests/drivers/test_pgjdbc.py with the JDK's source launcher,
//   java -cp /usr/share/java/postgresql.jar JdbcCheck.java <prepareThreshold> <run tag>
// with PGHOST_TEST, PGPORT_TEST, PGUSER_TEST and PGPASSWORD_TEST in the environment.
//
// WORKERS threads each insert in batches (addBatch/executeBatch), run queries more times than
// the prepare threshold (so pgjdbc switches to named server-side statements, S_1, S_2, ... in
// every connection), in autocommit and in transactions, roll back, and call
// PreparedStatement.getMetaData()/getParameterMetaData() on statements already prepared
// server-side: pgjdbc then sends only Describe('S') of the statement name, which in a pool of
// two kept busy by BUSY other threads often lands on a server that never saw the statement.
//
// Prints one "RESULT ..." line; every failure as a "FAIL ..." line; exits 1 if any.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ParameterMetaData;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

public class JdbcCheck {
  static final int WORKERS = 16;
  static final int BUSY = 4;
  static final int ROUNDS = 6;
  static final int BATCH = 25;
  static final int REPEATS = 8; // more than any prepareThreshold tried

  static final List<String> failures = Collections.synchronizedList(new ArrayList<>());
  static final AtomicInteger metadataChecks = new AtomicInteger();
  static final AtomicInteger threadsOnSeveralBackends = new AtomicInteger();
  static final AtomicBoolean stop = new AtomicBoolean(false);

  static String url;
  static Properties props;
  static String run;
  static int threshold;

  public static void main(String[] args) throws Exception {
    threshold = Integer.parseInt(args[0]);
    run = args[1];
    url = "jdbc:postgresql://" + System.getenv("PGHOST_TEST") + ":" + System.getenv("PGPORT_TEST")
        + "/postgres";
    props = new Properties();
    props.setProperty("user", System.getenv("PGUSER_TEST"));
    props.setProperty("password", System.getenv("PGPASSWORD_TEST"));
    props.setProperty("prepareThreshold", Integer.toString(threshold));
    props.setProperty("connectTimeout", "10");
    props.setProperty("socketTimeout", "60");
    props.setProperty("ApplicationName", "JdbcCheck");

    List<Thread> busy = new ArrayList<>();
    for (int b = 0; b < BUSY; b++) {
      final int id = b;
      Thread t = new Thread(() -> busyLoop(id));
      t.start();
      busy.add(t);
    }
    List<Thread> workers = new ArrayList<>();
    for (int w = 0; w < WORKERS; w++) {
      final int id = w;
      Thread t = new Thread(() -> worker(id));
      t.start();
      workers.add(t);
    }
    for (Thread t : workers) t.join(120_000);
    stop.set(true);
    for (Thread t : busy) t.join(30_000);
    for (Thread t : workers) {
      if (t.isAlive()) failures.add("a worker thread hung");
    }
    for (String f : failures) System.out.println("FAIL " + f);
    System.out.println("RESULT threshold=" + threshold + " run=" + run + " failures="
        + failures.size() + " metadata_checks=" + metadataChecks.get()
        + " threads_on_several_backends=" + threadsOnSeveralBackends.get());
    System.out.flush();
    System.exit(failures.isEmpty() ? 0 : 1);
  }

  // Keeps the servers busy with short transactions, so the workers' requests move between them.
  static void busyLoop(int id) {
    try (Connection conn = DriverManager.getConnection(url, props)) {
      conn.setAutoCommit(false);
      try (PreparedStatement sleep = conn.prepareStatement("SELECT pg_sleep(?), ?::int")) {
        int i = 0;
        while (!stop.get()) {
          sleep.setDouble(1, 0.01);
          sleep.setInt(2, i++);
          try (ResultSet rs = sleep.executeQuery()) {
            rs.next();
          }
          conn.commit();
        }
      }
    } catch (SQLException e) {
      failures.add("busy " + id + ": " + describe(e));
    }
  }

  static void worker(int w) {
    Set<Integer> backends = new HashSet<>();
    try (Connection conn = DriverManager.getConnection(url, props)) {
      for (int r = 0; r < ROUNDS; r++) {
        batchInsert(conn, w, r);
        repeatedQueries(conn, w, r, backends);
        rollback(conn, w, r);
        metadata(conn, w, r);
      }
    } catch (SQLException | RuntimeException e) {
      failures.add("worker " + w + ": " + describe(e));
    }
    if (backends.size() > 1) threadsOnSeveralBackends.incrementAndGet();
  }

  static void batchInsert(Connection conn, int w, int r) throws SQLException {
    conn.setAutoCommit(false);
    try (PreparedStatement ins = conn.prepareStatement(
        "INSERT INTO jdbc_items (run, thread, round, seq, payload) VALUES (?, ?, ?, ?, ?)")) {
      for (int i = 0; i < BATCH; i++) {
        ins.setString(1, run);
        ins.setInt(2, w);
        ins.setInt(3, r);
        ins.setInt(4, i);
        ins.setString(5, "w" + w + "-r" + r + "-" + i);
        ins.addBatch();
      }
      int[] counts = ins.executeBatch();
      for (int c : counts) {
        if (c != 1 && c != Statement.SUCCESS_NO_INFO) {
          failures.add("worker " + w + " round " + r + ": batch count " + c);
        }
      }
    }
    conn.commit();
  }

  static void repeatedQueries(Connection conn, int w, int r, Set<Integer> backends)
      throws SQLException {
    long expectedRows = (long) (r + 1) * BATCH;
    long expectedSum = (long) (r + 1) * (BATCH * (BATCH - 1) / 2);
    try (PreparedStatement q = conn.prepareStatement(
            "SELECT count(*), coalesce(sum(seq), 0), pg_backend_pid() FROM jdbc_items"
            + " WHERE run = ? AND thread = ?")) {
      // Autocommit: each execution is its own transaction, on whichever server is free.
      conn.setAutoCommit(true);
      for (int i = 0; i < REPEATS; i++) {
        checkCount(q, w, r, expectedRows, expectedSum, backends);
      }
      // The same statement inside a transaction.
      conn.setAutoCommit(false);
      for (int i = 0; i < REPEATS; i++) {
        checkCount(q, w, r, expectedRows, expectedSum, backends);
      }
      conn.commit();
    }
  }

  static void checkCount(PreparedStatement q, int w, int r, long rows, long sum,
                         Set<Integer> backends) throws SQLException {
    q.setString(1, run);
    q.setInt(2, w);
    try (ResultSet rs = q.executeQuery()) {
      if (!rs.next()) throw new SQLException("no row");
      if (rs.getLong(1) != rows || rs.getLong(2) != sum) {
        failures.add("worker " + w + " round " + r + ": count " + rs.getLong(1) + " sum "
            + rs.getLong(2) + ", want " + rows + " and " + sum);
      }
      backends.add(rs.getInt(3));
    }
  }

  static void rollback(Connection conn, int w, int r) throws SQLException {
    conn.setAutoCommit(false);
    try (PreparedStatement ins = conn.prepareStatement(
        "INSERT INTO jdbc_items (run, thread, round, seq, payload) VALUES (?, ?, ?, ?, 'x')")) {
      for (int i = 0; i < REPEATS; i++) {
        ins.setString(1, run);
        ins.setInt(2, w);
        ins.setInt(3, r);
        ins.setInt(4, 1000 + i);
        ins.executeUpdate();
      }
    }
    conn.rollback();
    // A statement error inside a transaction, then rollback: the connection goes on.
    try (PreparedStatement bad = conn.prepareStatement("SELECT 1 / (? - ?)")) {
      bad.setInt(1, w);
      bad.setInt(2, w);
      bad.executeQuery().close();
      failures.add("worker " + w + ": division by zero succeeded");
    } catch (SQLException e) {
      if (!"22012".equals(e.getSQLState())) throw e;
    }
    conn.rollback();
  }

  static void metadata(Connection conn, int w, int r) throws SQLException {
    conn.setAutoCommit(true);
    try (PreparedStatement m = conn.prepareStatement(
        "SELECT id, payload, seq FROM jdbc_items WHERE run = ? AND thread = ? AND seq > ?")) {
      // Executed past the threshold, so the statement is prepared server-side (named).
      for (int i = 0; i < REPEATS; i++) {
        m.setString(1, run);
        m.setInt(2, w);
        m.setInt(3, BATCH - 3);
        int n = 0;
        try (ResultSet rs = m.executeQuery()) {
          while (rs.next()) n++;
        }
        if (n != (r + 1) * 2) {
          failures.add("worker " + w + " round " + r + ": " + n + " rows from the metadata query");
        }
      }
      // Describe-only with the result set closed: only Describe('S') + Sync is sent.
      for (int i = 0; i < 3; i++) {
        ResultSetMetaData md = m.getMetaData();
        if (md == null || md.getColumnCount() != 3 || !"id".equals(md.getColumnName(1))
            || !"payload".equals(md.getColumnName(2)) || md.getColumnType(3) != Types.INTEGER) {
          failures.add("worker " + w + ": bad ResultSetMetaData " + (md == null ? "null"
              : md.getColumnCount() + " columns"));
        }
        ParameterMetaData pmd = m.getParameterMetaData();
        if (pmd.getParameterCount() != 3 || pmd.getParameterType(3) != Types.INTEGER) {
          failures.add("worker " + w + ": bad ParameterMetaData " + pmd.getParameterCount());
        }
        metadataChecks.incrementAndGet();
      }
    }
  }

  static String describe(Throwable e) {
    String state = e instanceof SQLException ? ((SQLException) e).getSQLState() : null;
    return e.getClass().getSimpleName() + (state != null ? " [" + state + "]" : "") + ": "
        + e.getMessage();
  }
}
