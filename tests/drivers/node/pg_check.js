// node-postgres (pg) through sluice: run by tests/drivers/test_node_pg.py as
//   node pg_check.js
// with PGHOST_TEST, PGPORT_TEST, PGUSER_TEST and PGPASSWORD_TEST in the environment.
//
// A pg.Pool of up to 30 connections. Named queries ({name, text, values}) are prepared once
// per connection by the driver and afterwards sent as Bind/Execute only, whichever server
// sluice picks: shared names with the same SQL through pool.query on any client, and one
// name per checked-out client with that client's own SQL (the same name, different SQL, in
// different connections). Transactions commit and roll back.
//
// Prints one "RESULT ..." line and every failure as "FAIL ..."; exits 1 on any failure.
'use strict'

const { Pool } = require('pg')

const WORKERS = 30
const ROUNDS = 8
const SHARED_QUERIES = 400

const failures = []
const fail = (what) => failures.push(what)

const pool = new Pool({
  host: process.env.PGHOST_TEST,
  port: Number(process.env.PGPORT_TEST),
  user: process.env.PGUSER_TEST,
  password: process.env.PGPASSWORD_TEST,
  database: 'postgres',
  max: 30,
  connectionTimeoutMillis: 20000,
  idleTimeoutMillis: 2000,
  query_timeout: 60000,
})
pool.on('error', (err) => fail(`idle client error: ${err.message}`))

const double = { name: 'q1', text: 'SELECT $1::int * 2 AS v, $2::text AS t' }
const countItems = { name: 'count_items', text: 'SELECT count(*)::int AS n, coalesce(sum(n), 0)::int AS s FROM node_pg_items WHERE worker = $1' }
const insertItem = { name: 'insert_item', text: 'INSERT INTO node_pg_items (worker, n) VALUES ($1, $2) RETURNING id' }

async function sharedQuery(i) {
  const res = await pool.query({ ...double, values: [i, `s${i}`] })
  const row = res.rows[0]
  if (row.v !== i * 2 || row.t !== `s${i}`) fail(`shared query ${i}: ${JSON.stringify(row)}`)
}

async function worker(w) {
  const client = await pool.connect()
  try {
    // This client's own statement under a name every client uses.
    const mine = { name: 'mine', text: `SELECT $1::int + ${w * 1000} AS v, ${w} AS w` }
    let committed = 0
    let sum = 0
    for (let r = 0; r < ROUNDS; r++) {
      const got = await client.query({ ...mine, values: [r] })
      if (got.rows[0].v !== r + w * 1000 || got.rows[0].w !== w) {
        fail(`worker ${w} round ${r}: mine returned ${JSON.stringify(got.rows[0])}`)
      }
      // Committed.
      await client.query('BEGIN')
      for (let i = 0; i < 3; i++) {
        await client.query({ ...insertItem, values: [w, r * 10 + i] })
      }
      const inside = await client.query({ ...countItems, values: [w] })
      if (inside.rows[0].n !== committed + 3) fail(`worker ${w} round ${r}: ${inside.rows[0].n} rows inside`)
      await client.query('COMMIT')
      committed += 3
      sum += 3 * r * 10 + 3
      // Rolled back.
      await client.query('BEGIN')
      await client.query({ ...insertItem, values: [w, 999] })
      await client.query('ROLLBACK')
      // Rolled back after an error inside the transaction.
      await client.query('BEGIN')
      try {
        await client.query({ name: 'boom', text: 'SELECT 1 / ($1::int - $1::int)', values: [w] })
        fail(`worker ${w}: division by zero succeeded`)
      } catch (err) {
        if (err.code !== '22012') throw err
      }
      await client.query('ROLLBACK')
      // Outside a transaction: each statement on whichever server is free.
      const after = await client.query({ ...countItems, values: [w] })
      if (after.rows[0].n !== committed || after.rows[0].s !== sum) {
        fail(`worker ${w} round ${r}: ${JSON.stringify(after.rows[0])}, want n=${committed} s=${sum}`)
      }
      const again = await client.query({ ...mine, values: [r + 1] })
      if (again.rows[0].v !== r + 1 + w * 1000) fail(`worker ${w}: mine again ${JSON.stringify(again.rows[0])}`)
    }
  } finally {
    client.release()
  }
}

async function main() {
  const deadline = setTimeout(() => { console.log('FAIL deadline passed'); process.exit(1) }, 120000)
  const jobs = []
  for (let w = 0; w < WORKERS; w++) jobs.push(worker(w).catch((err) => fail(`worker ${w}: ${err.code || ''} ${err.message}`)))
  for (let i = 0; i < SHARED_QUERIES; i++) jobs.push(sharedQuery(i).catch((err) => fail(`shared ${i}: ${err.code || ''} ${err.message}`)))
  await Promise.all(jobs)
  await pool.end()
  clearTimeout(deadline)
  for (const f of failures) console.log(`FAIL ${f}`)
  console.log(`RESULT failures=${failures.length} workers=${WORKERS} shared_queries=${SHARED_QUERIES}`)
  process.exitCode = failures.length ? 1 : 0
}

main().catch((err) => { console.log(`FAIL main: ${err.stack}`); process.exitCode = 1 })
