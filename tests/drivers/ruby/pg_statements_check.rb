# ruby-pg (Debian's ruby-pg, libpq underneath) through sluice: run by
# tests/drivers/test_ruby_pg_statements.py as
#   ruby pg_statements_check.rb CASE
# with DATABASE_URL in the environment. Each CASE is one behaviour of named prepared statements
# that PostgreSQL defines and a transaction-mode pooler must keep (issue 17 items 1 and 2,
# issue 13 item 8):
#
#   deallocate_in_failed_transaction  DEALLOCATE in a failed transaction gets 25P02 and the
#                                     statement stays: after ROLLBACK exec_prepared runs it.
#                                     By simple Query (exec) and by Parse/Bind/Execute
#                                     (exec_params), by name and ALL.
#   parse_in_failed_transaction       prepare() in a failed transaction gets 25P02, also for SQL
#                                     another client has prepared (so a server holds it), and
#                                     the name does not exist after ROLLBACK; SQL PREPARE too.
#   discard_all                       DISCARD ALL drops the sender's statements (26000 after) and
#                                     nobody else's, also for the same SQL on the same server:
#                                     those stay prepared there (pg_prepared_statements) and run.
#
# Prints every failure as "FAIL ..." and one "RESULT failures=N" line; exits 1 on any failure.
require "pg"

$failures = []

def fail!(what)
  $failures << what
  puts "FAIL #{what}"
end

def connect
  conn = PG.connect(ENV.fetch("DATABASE_URL"))
  conn.set_notice_processor { |_| } # DEALLOCATE/ROLLBACK notices are not what is checked
  conn
end

# The SQLSTATE of the PG::Error that the block raised, or nil when it raised none.
def sqlstate_of
  yield
  nil
rescue PG::Error => e
  e.result ? e.result.error_field(PG::PG_DIAG_SQLSTATE) : "no result: #{e.message}"
end

def expect_sqlstate(what, want, &block)
  got = sqlstate_of(&block)
  fail!("#{what}: got SQLSTATE #{got.inspect}, want #{want.inspect}") unless got == want
end

def expect_value(what, want)
  got = yield
  fail!("#{what}: got #{got.inspect}, want #{want.inspect}") unless got == want
rescue PG::Error => e
  fail!("#{what}: #{e.class}: #{e.message.strip}")
end

# Starts a transaction and makes it fail (division by zero): status 'E'.
def fail_a_transaction(conn, what)
  conn.exec("BEGIN")
  expect_sqlstate("#{what}: the failing statement", "22012") { conn.exec("SELECT 1/0") }
  status = conn.transaction_status
  fail!("#{what}: transaction status #{status}, want PQTRANS_INERROR") unless status == PG::PQTRANS_INERROR
end

# Another client running the same and other statements in between, so the pool's servers move
# between clients as they would in an application.
def busy_other(other, round)
  expect_value("other client, round #{round}", (round * 3).to_s) do
    other.exec_prepared("other_q", [round]).getvalue(0, 0)
  end
  expect_value("other client, simple query, round #{round}", "x#{round}") do
    other.exec("SELECT 'x#{round}'").getvalue(0, 0)
  end
end

def deallocate_in_failed_transaction
  conn = connect
  other = connect
  other.prepare("other_q", "SELECT $1::int * 3 AS v")
  conn.prepare("s1", "SELECT $1::int + 1 AS v")
  conn.prepare("s2", "SELECT $1::int + 2 AS v")
  expect_value("s1 before", "42") { conn.exec_prepared("s1", [41]).getvalue(0, 0) }

  forms = {
    "exec DEALLOCATE s1" => -> { conn.exec("DEALLOCATE s1") },
    "exec DEALLOCATE PREPARE s1" => -> { conn.exec("DEALLOCATE PREPARE s1") },
    "exec_params DEALLOCATE s1 (Parse/Bind/Execute)" => -> { conn.exec_params("DEALLOCATE s1", []) },
    "exec DEALLOCATE ALL" => -> { conn.exec("DEALLOCATE ALL") },
    "exec_params DEALLOCATE ALL (Parse/Bind/Execute)" => -> { conn.exec_params("DEALLOCATE ALL", []) }
  }
  forms.each_with_index do |(form, deallocate), round|
    fail_a_transaction(conn, form)
    expect_sqlstate("#{form} in a failed transaction", "25P02") { deallocate.call }
    conn.exec("ROLLBACK")
    busy_other(other, round)
    expect_value("#{form}: s1 after ROLLBACK", (round + 1).to_s) do
      conn.exec_prepared("s1", [round]).getvalue(0, 0)
    end
    expect_value("#{form}: s2 after ROLLBACK", (round + 2).to_s) do
      conn.exec_prepared("s2", [round]).getvalue(0, 0)
    end
    expect_value("#{form}: describe_prepared s1 after ROLLBACK", 1) do
      conn.describe_prepared("s1").nfields
    end
  end

  # And outside a failed transaction DEALLOCATE does drop it: the names really were checked.
  conn.exec("DEALLOCATE s1")
  expect_sqlstate("s1 after a DEALLOCATE that ran", "26000") { conn.exec_prepared("s1", [1]) }
  expect_value("s2 after DEALLOCATE s1", "3") { conn.exec_prepared("s2", [1]).getvalue(0, 0) }
  conn.close
  other.close
end

def parse_in_failed_transaction
  holder = connect
  conn = connect
  shared_sql = "SELECT $1::int * 10 AS v"
  holder.prepare("held", shared_sql)
  expect_value("holder's statement", "70") { holder.exec_prepared("held", [7]).getvalue(0, 0) }

  cases = {
    # SQL a server already holds (the holder prepared it): a pooler could answer this Parse
    # without asking a server.
    "prepare of SQL another client prepared" => ["q1", shared_sql],
    "prepare under the holder's name" => ["held", shared_sql],
    "prepare of new SQL" => ["q2", "SELECT $1::int * 20 AS v"]
  }
  cases.each do |what, (name, sql)|
    fail_a_transaction(conn, what)
    expect_sqlstate("#{what} in a failed transaction", "25P02") { conn.prepare(name, sql) }
    conn.exec("ROLLBACK")
    expect_sqlstate("#{what}: exec_prepared after ROLLBACK", "26000") { conn.exec_prepared(name, [1]) }
    expect_sqlstate("#{what}: describe_prepared after ROLLBACK", "26000") { conn.describe_prepared(name) }
    expect_value("holder's statement after #{what}", "10") do
      holder.exec_prepared("held", [1]).getvalue(0, 0)
    end
  end

  # The SQL form, PREPARE, is refused the same way.
  fail_a_transaction(conn, "SQL PREPARE")
  expect_sqlstate("SQL PREPARE in a failed transaction", "25P02") do
    conn.exec("PREPARE q3 (int) AS SELECT $1 * 10 AS v")
  end
  conn.exec("ROLLBACK")
  expect_sqlstate("SQL PREPARE: EXECUTE after ROLLBACK", "26000") { conn.exec("EXECUTE q3 (1)") }

  # Every name is free: preparing now works, and runs.
  { "q1" => shared_sql, "held" => shared_sql, "q2" => "SELECT $1::int * 20 AS v" }.each do |name, sql|
    expect_value("prepare #{name} after ROLLBACK", PG::PGRES_COMMAND_OK) { conn.prepare(name, sql).result_status }
  end
  expect_value("q1 prepared again", "30") { conn.exec_prepared("q1", [3]).getvalue(0, 0) }
  expect_value("held prepared again", "40") { conn.exec_prepared("held", [4]).getvalue(0, 0) }
  expect_value("q2 prepared again", "100") { conn.exec_prepared("q2", [5]).getvalue(0, 0) }
  conn.exec("PREPARE q3 (int) AS SELECT $1 * 10 AS v")
  expect_value("SQL PREPARE again", "60") { conn.exec("EXECUTE q3 (6)").getvalue(0, 0) }
  conn.close
  holder.close
end

def discard_all
  discard_all_by("exec", ->(c) { c.exec("DISCARD ALL") })
end

# How many statements with this SQL the session's server holds: the client's own on PostgreSQL,
# the one sluice shares between clients through sluice. Read before the statement is used
# again, so a statement prepared afresh on that use cannot hide one the DISCARD ALL dropped.
def held_on_server(conn, sql)
  conn.exec_params("SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", [sql])
      .getvalue(0, 0).to_i
end

def discard_all_by(form, discard)
  discarder = connect
  keeper = connect
  shared_sql = "SELECT 'shared:' || $1::text AS v"
  [discarder, keeper].each { |c| c.prepare("s1", shared_sql) } # one server-side statement
  discarder.prepare("mine", "SELECT 'mine:' || $1::text AS v")
  keeper.prepare("kept", "SELECT 'kept:' || $1::text AS v")
  keeper.prepare("s2", "SELECT 'keeper s2:' || $1::text AS v")
  discarder.prepare("s2", "SELECT 'discarder s2:' || $1::text AS v")
  discarder.exec("PREPARE sql_mine AS SELECT 'sql mine'")
  keeper.exec("PREPARE sql_kept AS SELECT 'sql kept'")
  expect_value("#{form}: discarder s1 before", "shared:a") { discarder.exec_prepared("s1", ["a"]).getvalue(0, 0) }

  expect_value("#{form} DISCARD ALL", "DISCARD ALL") { discard.call(discarder).cmd_status }

  # The keeper's statements are still prepared on the server (the only one, with a pool of
  # one): DISCARD ALL did not drop them there for sluice to prepare again.
  [shared_sql, "SELECT 'kept:' || $1::text AS v"].each do |sql|
    expect_value("#{form}: statements on the keeper's server with #{sql.inspect}", 1) { held_on_server(keeper, sql) }
  end
  %w[s1 mine s2 sql_mine].each do |name|
    expect_sqlstate("#{form}: discarder's #{name} after DISCARD ALL", "26000") { discarder.exec_prepared(name, ["b"]) }
  end
  20.times do |i|
    expect_value("#{form}: keeper s1, run #{i}", "shared:#{i}") { keeper.exec_prepared("s1", [i]).getvalue(0, 0) }
    expect_value("#{form}: keeper kept, run #{i}", "kept:#{i}") { keeper.exec_prepared("kept", [i]).getvalue(0, 0) }
    expect_value("#{form}: keeper s2, run #{i}", "keeper s2:#{i}") { keeper.exec_prepared("s2", [i]).getvalue(0, 0) }
  end
  expect_value("#{form}: keeper describe_prepared s1", 1) { keeper.describe_prepared("s1").nfields }
  expect_value("#{form}: keeper EXECUTE sql_kept", "sql kept") { keeper.exec("EXECUTE sql_kept").getvalue(0, 0) }

  # The discarder's names are free again, for the same SQL and for other SQL.
  discarder.prepare("s1", shared_sql)
  discarder.prepare("mine", "SELECT 'mine again:' || $1::text AS v")
  expect_value("#{form}: discarder s1 prepared again", "shared:c") { discarder.exec_prepared("s1", ["c"]).getvalue(0, 0) }
  expect_value("#{form}: discarder mine prepared again", "mine again:c") do
    discarder.exec_prepared("mine", ["c"]).getvalue(0, 0)
  end
  expect_value("#{form}: keeper s1 at the end", "shared:z") { keeper.exec_prepared("s1", ["z"]).getvalue(0, 0) }
  discarder.close
  keeper.close
end

CASES = %w[deallocate_in_failed_transaction parse_in_failed_transaction discard_all].freeze

name = ARGV.fetch(0, "")
unless CASES.include?(name)
  warn "usage: ruby pg_statements_check.rb {#{CASES.join('|')}}"
  exit 2
end
begin
  send(name)
rescue StandardError => e
  fail!("#{name}: #{e.class}: #{e.message.strip}\n#{e.backtrace.first(5).join("\n")}")
end
puts "RESULT case=#{name} failures=#{$failures.size}"
exit($failures.empty? ? 0 : 1)
