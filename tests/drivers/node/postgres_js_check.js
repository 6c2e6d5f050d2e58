// postgres.js (the `postgres` package) through sluice: run by tests/drivers/test_postgres_js.py
// as
//   node postgres_js_check.js
// with PGHOST_TEST, PGPORT_TEST, PGUSER_TEST and PGPASSWORD_TEST in the environment.
//
// Its defaults: prepare: true, so every query is a named statement. A new statement with
// parameters goes out as Parse + Describe('S') + Flush, and Bind + Execute + Sync follows when
// the ParameterDescription arrives (the server must stay with the client across the Flush);
// known statements are pipelined, many per connection, without waiting for replies. Up to 20
// connections; sql.begin() transactions commit, roll back, and pipeline inside.
//
// Prints one "RESULT ..." line and every failure as "FAIL ..."; exits 1 on any failure.
'use strict'

const postgres = require('postgres')

const PIPELINED = 1500
const TRANSACTIONS = 60
const failures = []
const fail = (what) => failures.push(what)

const sql = postgres({
  host: process.env.PGHOST_TEST,
  port: Number(process.env.PGPORT_TEST),
  user: process.env.PGUSER_TEST,
  pass: process.env.PGPASSWORD_TEST,
  database: 'postgres',
  max: 20,
  connect_timeout: 20,
  idle_timeout: 5,
  onnotice: () => {},
})

async function pipelined(i) {
  // A handful of statement shapes, each used many times on every connection.
  switch (i % 5) {
    case 0: {
      const [row] = await sql`SELECT ${i}::int * 2 AS v`
      if (row.v !== i * 2) fail(`pipelined ${i}: ${JSON.stringify(row)}`)
      break
    }
    case 1: {
      const [row] = await sql`SELECT ${'t' + i}::text AS t, ${i}::int + 1 AS n`
      if (row.t !== 't' + i || row.n !== i + 1) fail(`pipelined ${i}: ${JSON.stringify(row)}`)
      break
    }
    case 2: {
      const rows = await sql`SELECT g FROM generate_series(1, ${i % 7 + 1}) g`
      if (rows.length !== i % 7 + 1) fail(`pipelined ${i}: ${rows.length} rows`)
      break
    }
    case 3: {
      const [row] = await sql`SELECT count(*)::int AS n FROM pjs_items WHERE tx < ${-1}`
      if (row.n !== 0) fail(`pipelined ${i}: ${JSON.stringify(row)}`)
      break
    }
    default: {
      const [row] = await sql`SELECT ${[i, i + 1]}::int[] AS a`
      if (row.a[1] !== i + 1) fail(`pipelined ${i}: ${JSON.stringify(row)}`)
    }
  }
}

class Deliberate extends Error {}

async function transaction(t) {
  const rollback = t % 4 === 3
  try {
    const result = await sql.begin(async (tx) => {
      await tx`INSERT INTO pjs_items (tx, n) VALUES (${t}, ${1})`
      await tx`INSERT INTO pjs_items (tx, n) VALUES (${t}, ${2})`
      // Pipelined inside the transaction.
      const [a, b] = await Promise.all([
        tx`SELECT count(*)::int AS n FROM pjs_items WHERE tx = ${t}`,
        tx`SELECT coalesce(sum(n), 0)::int AS s FROM pjs_items WHERE tx = ${t}`,
      ])
      if (a[0].n !== 2 || b[0].s !== 3) fail(`tx ${t}: inside ${a[0].n} rows, sum ${b[0].s}`)
      if (rollback) throw new Deliberate()
      return a[0].n
    })
    if (result !== 2) fail(`tx ${t}: returned ${result}`)
  } catch (err) {
    if (!(rollback && err instanceof Deliberate)) throw err
  }
  // An error inside a transaction: rolled back, the connection goes on.
  try {
    await sql.begin(async (tx) => {
      await tx`INSERT INTO pjs_items (tx, n) VALUES (${t}, ${100})`
      await tx`SELECT 1 / (${t}::int - ${t}::int)`
    })
    fail(`tx ${t}: division by zero committed`)
  } catch (err) {
    if (err.code !== '22012') throw err
  }
  const [row] = await sql`SELECT count(*)::int AS n FROM pjs_items WHERE tx = ${t}`
  if (row.n !== (rollback ? 0 : 2)) fail(`tx ${t}: ${row.n} rows after`)
}

async function main() {
  const deadline = setTimeout(() => { console.log('FAIL deadline passed'); process.exit(1) }, 120000)
  const jobs = []
  for (let i = 0; i < PIPELINED; i++) jobs.push(pipelined(i).catch((err) => fail(`pipelined ${i}: ${err.code || ''} ${err.message}`)))
  for (let t = 0; t < TRANSACTIONS; t++) jobs.push(transaction(t).catch((err) => fail(`tx ${t}: ${err.code || ''} ${err.message}`)))
  await Promise.all(jobs)
  // A second burst on connections that now know every statement: Bind/Execute only.
  const again = []
  for (let i = 0; i < PIPELINED; i++) again.push(pipelined(i).catch((err) => fail(`again ${i}: ${err.code || ''} ${err.message}`)))
  await Promise.all(again)
  await sql.end({ timeout: 10 })
  clearTimeout(deadline)
  for (const f of failures.slice(0, 50)) console.log(`FAIL ${f}`)
  console.log(`RESULT failures=${failures.length} pipelined=${2 * PIPELINED} transactions=${TRANSACTIONS}`)
  process.exitCode = failures.length ? 1 : 0
}

main().catch((err) => { console.log(`FAIL main: ${err.stack}`); process.exitCode = 1 })
