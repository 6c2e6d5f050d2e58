<?php
// PHP PDO (pdo_pgsql, native prepared statements: its default) through sluice: run by
// tests/drivers/test_php_pdo_lastval.py as
//   php lastval_check.php worker TAG ROUNDS        one connection, many times over
//   php lastval_check.php interleave TAG ROUNDS N  N connections in turn, in one process
// with PGHOST_TEST, PGPORT_TEST, PGUSER_TEST and PGPASSWORD_TEST in the environment, against
// a database with the table lv_items (id serial, marker text).
//
// Each step inserts a row with a marker of its own, outside a transaction, then asks
// PDO::lastInsertId() (SELECT LASTVAL() in the same session) which id it got and reads that
// row back. PostgreSQL always answers with the session's own id. Through a transaction-mode
// pooler the next statement may run on another server session, whose lastval() would be some
// other client's: sluice must answer with the client's own id or with SQLSTATE 55000, never
// with another's. Inside a transaction the server cannot change, so there it must be the
// client's own id every time. "interleave" makes every connection insert before any asks, so
// each one's lastInsertId() comes after the others' INSERTs.
//
// Prints every failure as "FAIL ..." and one "RESULT ..." line; exits 1 on any failure.

declare(strict_types=1);

$failures = [];
$stats = ['own' => 0, 'sqlstate_55000' => 0, 'in_transaction_own' => 0];

function fail(string $what): void
{
    global $failures;
    $failures[] = $what;
    if (count($failures) <= 40) {
        echo "FAIL $what\n";
    }
}

function connect(): PDO
{
    $dsn = sprintf('pgsql:host=%s;port=%s;dbname=postgres;connect_timeout=10',
                   getenv('PGHOST_TEST'), getenv('PGPORT_TEST'));
    return new PDO($dsn, getenv('PGUSER_TEST'), getenv('PGPASSWORD_TEST'),
                   [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
}

final class Client
{
    public PDO $pdo;
    private PDOStatement $insert;
    private PDOStatement $read;

    public function __construct(public string $name)
    {
        $this->pdo = connect();
        $this->insert = $this->pdo->prepare('INSERT INTO lv_items (marker) VALUES (?)');
        $this->read = $this->pdo->prepare('SELECT marker FROM lv_items WHERE id = ?');
    }

    // Inserts a row marked $marker, by a prepared statement or by PDO::exec (a simple Query).
    public function insert(string $marker, bool $prepared): void
    {
        if ($prepared) {
            $this->insert->execute([$marker]);
        } else {
            $this->pdo->exec("INSERT INTO lv_items (marker) VALUES ('$marker')");
        }
    }

    // lastInsertId(), checked: the id of the row marked $marker, or 55000 where allowed.
    // Returns 'own' or 'sqlstate_55000'; records a failure otherwise.
    public function check_last_id(string $marker, bool $may_refuse): ?string
    {
        try {
            $id = $this->pdo->lastInsertId();
        } catch (PDOException $e) {
            $state = $e->errorInfo[0] ?? (string)$e->getCode();
            if ($state === '55000' && $may_refuse) {
                return 'sqlstate_55000';
            }
            fail("{$this->name}: lastInsertId() after '$marker': SQLSTATE $state: " . $e->getMessage());
            return null;
        }
        if ($id === false || !ctype_digit((string)$id)) {
            fail("{$this->name}: lastInsertId() after '$marker' returned " . var_export($id, true));
            return null;
        }
        $this->read->execute([(int)$id]);
        $found = $this->read->fetchColumn();
        $this->read->closeCursor();
        if ($found !== $marker) {
            fail("{$this->name}: lastInsertId() after inserting '$marker' returned $id, the id of "
                 . var_export($found, true));
            return null;
        }
        return 'own';
    }
}

function count_outcome(?string $outcome): void
{
    global $stats;
    if ($outcome !== null) {
        $stats[$outcome]++;
    }
}

// In a transaction: the client's own id, every time, through any pooler.
function in_transaction(Client $c, string $marker, bool $prepared): void
{
    global $stats;
    $c->pdo->beginTransaction();
    $c->insert($marker, $prepared);
    if ($c->check_last_id($marker, false) === 'own') {
        $stats['in_transaction_own']++;
    }
    $c->pdo->commit();
}

[$mode, $tag, $rounds] = [$argv[1] ?? '', $argv[2] ?? 'x', (int)($argv[3] ?? 0)];
$clients = [];
try {
    if ($mode === 'worker') {
        $c = new Client($tag);
        for ($i = 0; $i < $rounds; $i++) {
            $prepared = $i % 2 === 0;
            $marker = "$tag-$i";
            $c->insert($marker, $prepared);
            count_outcome($c->check_last_id($marker, true));
            if ($i % 5 === 4) {
                in_transaction($c, "$tag-$i-tx", $prepared);
            }
        }
    } elseif ($mode === 'interleave') {
        $n = (int)($argv[4] ?? 3);
        for ($k = 0; $k < $n; $k++) {
            $clients[] = new Client("$tag-c$k");
        }
        for ($i = 0; $i < $rounds; $i++) {
            $prepared = $i % 2 === 0;
            foreach ($clients as $c) {
                $c->insert("{$c->name}-$i", $prepared);
            }
            foreach ($clients as $c) {
                count_outcome($c->check_last_id("{$c->name}-$i", true));
            }
            foreach ($clients as $c) {
                in_transaction($c, "{$c->name}-$i-tx", $prepared);
            }
        }
    } else {
        fwrite(STDERR, "usage: php lastval_check.php worker TAG ROUNDS | interleave TAG ROUNDS N\n");
        exit(2);
    }
} catch (Throwable $e) {
    fail("$mode $tag: " . get_class($e) . ': ' . $e->getMessage());
}

$summary = implode(' ', array_map(fn($k, $v) => "$k=$v", array_keys($stats), $stats));
echo 'RESULT failures=' . count($failures) . " $summary\n";
exit(count($failures) === 0 ? 0 : 1);
