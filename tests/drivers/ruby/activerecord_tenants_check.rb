# ActiveRecord (Debian's 6.1, prepared statements on: its default for PostgreSQL) with one
# schema per tenant, through sluice: run by tests/drivers/test_activerecord_tenants.py as
#   ruby activerecord_tenants_check.rb
# with DATABASE_URL in the environment, against a database that has tables tenant_a.t and
# tenant_b.t (id serial, tenant text, n int) holding rows n = 1..ROWS of their own tenant.
#
# Five kinds of client, two threads each, every one with its own connection:
#   a_set, b_set   schema_search_path in the config: ActiveRecord sends SET search_path
#   a_opt, b_opt   options: "-c search_path=...", set at login
#   switch         one connection switching tenants per unit of work, as the apartment gem
#                  does (connection.schema_search_path = ..., again a SET)
# They all run the same SQL text (ActiveRecord names its statements a1, a2, ... per connection
# and keys them by search_path and SQL), in and out of transactions. Phase 1 runs; then
# tenant_a.t gains a column; then tenant_a clients prepare a query nobody has prepared yet, so
# that its first server-side plan is tenant_a's new shape; then phase 2 runs.
#
# PostgreSQL's rules, which this checks: a statement prepared on tenant_a before the ALTER fails
# once per connection with 0A000 "cached plan must not change result type" (ActiveRecord
# retries it outside a transaction and raises PreparedStatementCacheExpired inside one); tenant_b
# never sees that error, nor anything else, and every client only ever reads its own tenant's
# rows. ActiveRecord hides the retried 0A000, so every failed statement is also counted from its
# sql.active_record notifications.
#
# Prints every failure as "FAIL ..." and one "RESULT ..." line; exits 1 on any failure.
require "active_record"
require "uri"

ROWS = 20
THREADS_PER_KIND = 2
PHASE1_ROUNDS = 8
PHASE2_ROUNDS = 25
CACHED_PLAN = "cached plan must not change result type"
# More 0A000 retries than a connection has statements means ActiveRecord is looping.
MAX_RETRIES_PER_THREAD = 12

$failures = []
$lock = Mutex.new
$stats = Hash.new(0)

def fail!(what)
  $lock.synchronize do
    $failures << what
    puts "FAIL #{what}" if $failures.size <= 60
  end
end

def count(key, by = 1)
  $lock.synchronize { $stats[key] += by }
end

url = URI.parse(ENV.fetch("DATABASE_URL"))
BASE_CONFIG = {
  adapter: "postgresql", host: url.host, port: url.port, database: url.path.delete_prefix("/"),
  username: URI.decode_www_form_component(url.user),
  password: URI.decode_www_form_component(url.password),
  pool: THREADS_PER_KIND, checkout_timeout: 60, connect_timeout: 10
}.freeze

KINDS = {
  "a_set" => { tenant: "a", config: { schema_search_path: "tenant_a" } },
  "b_set" => { tenant: "b", config: { schema_search_path: "tenant_b" } },
  "a_opt" => { tenant: "a", config: { options: "-c search_path=tenant_a" } },
  "b_opt" => { tenant: "b", config: { options: "-c search_path=tenant_b" } },
  "switch" => { tenant: nil, config: {} }
}.freeze

ActiveRecord::Base.logger = nil
MODELS = KINDS.to_h do |kind, spec|
  base = Class.new(ActiveRecord::Base) { self.abstract_class = true }
  Object.const_set("Base_#{kind}", base)
  base.establish_connection(BASE_CONFIG.merge(spec[:config]))
  model = Class.new(base) { self.table_name = "t" }
  Object.const_set("Item_#{kind}", model)
  [kind, model]
end

# Every statement that failed, with the tenant the thread was working for at the time: the
# 0A000 that ActiveRecord retried without telling its caller included.
ActiveSupport::Notifications.subscribe("sql.active_record") do |*, payload|
  error = payload[:exception_object]
  next unless error && Thread.current[:tenant]

  if error.message.include?(CACHED_PLAN)
    count("cached_plan_errors_#{Thread.current[:tenant]}")
    Thread.current[:retries] = (Thread.current[:retries] || 0) + 1
    if Thread.current[:tenant] == "b"
      fail!("#{Thread.current[:who]}: tenant_b got 0A000 (#{payload[:sql]}): #{error.message.lines.first.strip}")
    end
    raise "#{Thread.current[:who]}: ActiveRecord retried 0A000 #{Thread.current[:retries]} times" \
      if Thread.current[:retries] > MAX_RETRIES_PER_THREAD
  else
    fail!("#{Thread.current[:who]}: #{payload[:sql]}: #{error.class}: #{error.message.lines.first.strip}")
  end
end

def check_rows(who, tenant, what, records, want_ns)
  got_tenants = records.map(&:tenant).uniq
  fail!("#{who}: #{what} read tenants #{got_tenants.inspect}, want [#{tenant.inspect}]") \
    unless got_tenants == [tenant]
  got_ns = records.map(&:n).sort
  fail!("#{who}: #{what} read n=#{got_ns.inspect}, want #{want_ns.inspect}") unless got_ns == want_ns
  count("rows_read_#{tenant}", records.size)
end

# One unit of work for `tenant` on the model's current connection; `round` picks the values.
def unit_of_work(who, model, tenant, round, phase)
  Thread.current[:tenant] = tenant
  k = (round % ROWS) + 1
  # Outside a transaction (each statement its own, as Rails runs a plain read).
  check_rows(who, tenant, "where(n: #{k})", model.where(n: k).to_a, [k])
  check_rows(who, tenant, "find_by", [model.find_by(n: k, tenant: tenant)], [k])
  # SQL that tenant_a prepared first after the ALTER (see below).
  check_rows(who, tenant, "where(n: #{k}).limit(5)", model.where(n: k).limit(5).to_a, [k]) if phase == 2
  # In a transaction: 0A000 there becomes PreparedStatementCacheExpired, which only tenant_a
  # may see, and only for a statement it prepared before the ALTER.
  begin
    model.transaction do
      check_rows(who, tenant, "where(n: #{k}) in a transaction", model.where(n: k).to_a, [k])
      lo = ((round * 7) % ROWS) + 1
      hi = [lo + 3, ROWS].min
      check_rows(who, tenant, "where(n: #{lo}..#{hi}) in a transaction",
                 model.where(n: lo..hi).order(:n).to_a, (lo..hi).to_a)
      created = model.create!(tenant: tenant, n: 1000 + round)
      check_rows(who, tenant, "find(created)", [model.find(created.id)], [1000 + round])
      raise ActiveRecord::Rollback # the tables keep exactly ROWS rows per tenant
    end
  rescue ActiveRecord::PreparedStatementCacheExpired => e
    if tenant == "a"
      count("cache_expired_in_transaction_a")
    else
      fail!("#{who}: tenant_b raised PreparedStatementCacheExpired: #{e.message.lines.first.strip}")
    end
  end
  return unless phase == 2 && tenant == "a"

  extra = model.where(n: k).to_a.map { |r| r.attributes["extra"] }
  fail!("#{who}: tenant_a rows after the ALTER have extra=#{extra.inspect}") unless extra == [7]
rescue StandardError => e
  fail!("#{who} round #{round}: #{e.class}: #{e.message.lines.first&.strip}")
ensure
  Thread.current[:tenant] = nil
  count("units_#{phase}")
end

def run_phase(phase, rounds)
  threads = KINDS.keys.flat_map do |kind|
    THREADS_PER_KIND.times.map do |i|
      Thread.new do
        who = "#{kind}##{i} phase #{phase}"
        Thread.current[:who] = who
        model = MODELS.fetch(kind)
        model.connection_pool.with_connection do |conn|
          rounds.times do |round|
            tenant = KINDS[kind][:tenant]
            if tenant.nil? # the switcher: a tenant per unit of work
              tenant = (round + i).even? ? "a" : "b"
              conn.schema_search_path = "tenant_#{tenant}"
            end
            unit_of_work(who, model, tenant, round + 100 * i, phase)
          end
        end
      rescue StandardError => e
        fail!("#{who}: #{e.class}: #{e.message.lines.first&.strip}")
      end
    end
  end
  threads.each do |t|
    fail!("a phase #{phase} thread hung") unless t.join(120)
  end
end

begin
  run_phase(1, PHASE1_ROUNDS)
  # Through the pooler too, as an application's migration would run.
  MODELS["a_set"].connection_pool.with_connection do |conn|
    conn.execute("ALTER TABLE tenant_a.t ADD COLUMN extra int NOT NULL DEFAULT 7")
  end
  # tenant_a is first to prepare this SQL, in its new shape; tenant_b's copy is a different
  # result type, so sharing a server-side statement with tenant_a would fail tenant_b.
  %w[a_set a_opt].each do |kind|
    Thread.current[:who] = "#{kind} first of new SQL"
    Thread.current[:tenant] = "a"
    MODELS[kind].connection_pool.with_connection do
      check_rows("#{kind} first of new SQL", "a", "where(n:).limit(5)",
                 MODELS[kind].where(n: 3).limit(5).to_a, [3])
    end
    Thread.current[:tenant] = nil
  end
  run_phase(2, PHASE2_ROUNDS)
rescue StandardError => e
  fail!("#{e.class}: #{e.message.lines.first&.strip}\n#{e.backtrace.first(5).join("\n")}")
end

want_units = KINDS.size * THREADS_PER_KIND * (PHASE1_ROUNDS + PHASE2_ROUNDS)
got_units = $stats["units_1"] + $stats["units_2"]
fail!("#{got_units} units of work ran, want #{want_units}") unless got_units == want_units
stats = $stats.sort.map { |k, v| "#{k}=#{v}" }.join(" ")
puts "RESULT failures=#{$failures.size} #{stats}"
exit($failures.empty? ? 0 : 1)
