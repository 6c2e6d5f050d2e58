"""The service sluice exists for: SQLAlchemy 1.4's async ORM on asyncpg, configured as such
services are (pre-ping, a pool of 5 plus 10 overflow, recycle, timeout), through sluice in
transaction mode with a pool of 3 servers.

Request handlers run concurrently, each in `async with session.begin():`, inserting, updating
and selecting; some raise on purpose, so their transaction is rolled back. Background tasks
open their own sessions; when their work fails they record the error in an errors table from a
separate session. Afterwards every row that should persist does, in exact numbers, none that
should not, and no driver ever saw "prepared statement ... does not exist / already exists".
"""

from __future__ import annotations

import asyncio
import random

from driver_harness import DriverTestCase  # first: it puts the harness on sys.path
import harness

from sqlalchemy import (Column, ForeignKey, Integer, String, UniqueConstraint, func, select,
                        update)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import declarative_base, relationship, selectinload, sessionmaker

Base = declarative_base()


class Account(Base):
    __tablename__ = "accounts"
    id = Column(Integer, primary_key=True)
    name = Column(String(80), nullable=False, unique=True)
    balance = Column(Integer, nullable=False, default=0)
    orders = relationship("Order", back_populates="account")


class Order(Base):
    __tablename__ = "orders"
    id = Column(Integer, primary_key=True)
    account_id = Column(Integer, ForeignKey("accounts.id"), nullable=False)
    amount = Column(Integer, nullable=False)
    status = Column(String(20), nullable=False, default="new")
    account = relationship("Account", back_populates="orders")


class Job(Base):
    __tablename__ = "jobs"
    id = Column(Integer, primary_key=True)
    task = Column(Integer, nullable=False)
    step = Column(Integer, nullable=False)
    __table_args__ = (UniqueConstraint("task", "step"),)


class ErrorRecord(Base):
    __tablename__ = "errors"
    id = Column(Integer, primary_key=True)
    source = Column(String(40), nullable=False)
    message = Column(String, nullable=False)


HANDLERS = 40          # concurrent request handlers per wave
WAVES = 3
ORDERS_PER_HANDLER = 3
ORDER_AMOUNT = 5
BACKGROUND_TASKS = 8
JOB_STEPS = 6          # each task also retries one step, which violates the unique key


def handler_fails(wave: int, n: int) -> bool:
    return n % 5 == 3  # these raise after writing, so nothing they wrote may persist


class DeliberateError(Exception):
    pass


class SqlalchemyAsyncpgTest(DriverTestCase):
    pool_size = 3

    def test_async_orm_service(self):
        failures: list[str] = []
        driver_errors: list[str] = []
        asyncio.run(asyncio.wait_for(self._service(failures, driver_errors), 150))
        self.assertEqual(failures, [], "\n".join(failures[:20]) +
                         f"\nsluice log:\n{self.sluice_log_excerpt(40)}")

        ok_handlers = [(w, n) for w in range(WAVES) for n in range(HANDLERS)
                       if not handler_fails(w, n)]
        failed_handlers = [(w, n) for w in range(WAVES) for n in range(HANDLERS)
                           if handler_fails(w, n)]
        counts = self.admin_sql(
            "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM orders),"
            " (SELECT coalesce(sum(balance), 0) FROM accounts),"
            " (SELECT count(*) FROM orders WHERE status = 'paid'),"
            " (SELECT count(*) FROM jobs),"
            " (SELECT count(*) FROM errors WHERE source = 'handler'),"
            " (SELECT count(*) FROM errors WHERE source = 'background')")
        self.assertEqual(counts.split("|"), [
            str(len(ok_handlers)),
            str(len(ok_handlers) * ORDERS_PER_HANDLER),
            str(len(ok_handlers) * (100 - ORDERS_PER_HANDLER * ORDER_AMOUNT)),
            str(len(ok_handlers) * ORDERS_PER_HANDLER),
            str(BACKGROUND_TASKS * JOB_STEPS),
            str(len(failed_handlers)),
            str(BACKGROUND_TASKS),
        ])
        # Exactly the right accounts, and none of the rolled-back ones.
        names = set(self.admin_sql("SELECT name FROM accounts").split())
        self.assertEqual(names, {f"acct-{w}-{n}" for w, n in ok_handlers})
        recorded = self.admin_sql("SELECT message FROM errors WHERE source = 'handler' "
                                  "ORDER BY message").splitlines()
        self.assertEqual(sorted(recorded),
                         sorted(f"deliberate failure in handler {w}-{n}" for w, n in failed_handlers))
        self.assert_no_statement_errors("\n".join(driver_errors))
        self.assert_daemon_serving()

    async def _service(self, failures: list[str], driver_errors: list[str]) -> None:
        engine = create_async_engine(
            self.url("postgresql+asyncpg"), pool_pre_ping=True, pool_size=5, max_overflow=10,
            pool_recycle=60, pool_timeout=30)
        Session = sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)

            async def record_error(source: str, message: str) -> None:
                # A separate session: the failed one is rolled back, this must persist.
                async with Session() as session:
                    async with session.begin():
                        session.add(ErrorRecord(source=source, message=message))

            async def handler(wave: int, n: int) -> None:
                name = f"acct-{wave}-{n}"
                try:
                    async with Session() as session:
                        async with session.begin():
                            account = Account(name=name, balance=100)
                            session.add(account)
                            await session.flush()
                            for i in range(ORDERS_PER_HANDLER):
                                session.add(Order(account_id=account.id, amount=ORDER_AMOUNT))
                            await session.flush()
                            total = await session.scalar(
                                select(func.sum(Order.amount)).where(Order.account_id == account.id))
                            await session.execute(
                                update(Account).where(Account.id == account.id)
                                .values(balance=Account.balance - total))
                            await session.execute(
                                update(Order).where(Order.account_id == account.id)
                                .values(status="paid"))
                            if handler_fails(wave, n):
                                raise DeliberateError(f"deliberate failure in handler {wave}-{n}")
                    # A read in a new transaction: possibly another server.
                    async with Session() as session:
                        loaded = (await session.execute(
                            select(Account).options(selectinload(Account.orders))
                            .where(Account.name == name))).scalar_one()
                        if loaded.balance != 100 - ORDERS_PER_HANDLER * ORDER_AMOUNT or \
                                sorted(o.status for o in loaded.orders) != ["paid"] * ORDERS_PER_HANDLER:
                            failures.append(f"handler {wave}-{n}: read back {loaded.balance}, "
                                            f"{[o.status for o in loaded.orders]}")
                except DeliberateError as exc:
                    await record_error("handler", str(exc))
                except Exception as exc:  # noqa: BLE001 - reported by the test
                    driver_errors.append(repr(exc))
                    failures.append(f"handler {wave}-{n}: {type(exc).__name__}: {exc}")

            async def background(task: int) -> None:
                rng = random.Random(task)
                try:
                    for step in range(JOB_STEPS):
                        async with Session() as session:
                            async with session.begin():
                                session.add(Job(task=task, step=step))
                        await asyncio.sleep(rng.random() * 0.01)
                    # Retry an already-done step: a unique violation, rolled back, recorded.
                    try:
                        async with Session() as session:
                            async with session.begin():
                                session.add(Job(task=task, step=rng.randrange(JOB_STEPS)))
                    except IntegrityError as exc:
                        await record_error("background", f"task {task}: {type(exc.orig).__name__}")
                    # Then plain reads, each its own transaction.
                    async with Session() as session:
                        for _ in range(5):
                            done = await session.scalar(
                                select(func.count()).select_from(Job).where(Job.task == task))
                            if done != JOB_STEPS:
                                failures.append(f"background {task}: {done} jobs")
                            await session.commit()
                except Exception as exc:  # noqa: BLE001 - reported by the test
                    driver_errors.append(repr(exc))
                    failures.append(f"background {task}: {type(exc).__name__}: {exc}")

            bg = [asyncio.create_task(background(t)) for t in range(BACKGROUND_TASKS)]
            for wave in range(WAVES):
                await asyncio.gather(*(handler(wave, n) for n in range(HANDLERS)))
            await asyncio.gather(*bg)
        except DBAPIError as exc:
            driver_errors.append(repr(exc))
            failures.append(f"setup: {exc}")
        finally:
            await engine.dispose()


if __name__ == "__main__":
    harness.main()
