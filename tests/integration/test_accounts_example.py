"""examples/accounts: XFER moves amounts between many accounts, each call updating two records,
on both stores. Every transfer is accounted for in the replies: each account's update numbers
come back gapless and once each, and its last balance is what the transfers say it is.
"""

import random
import threading
import uuid

import pytest

from esrt.client import Client
from esrt.testing.apps import PROGRAMS, build_car

ACCOUNTS = 40
CALLERS = 4
CALLS_EACH = 60


@pytest.fixture(params=["berkeley-db", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def store(request):
    """The server options of each store."""
    if request.param == "berkeley-db":
        return ()
    return ("--store", request.getfixturevalue("pg_store"))


@pytest.fixture(scope="session")
def accounts_car(tmp_path_factory):
    return build_car("XFER", workdir=tmp_path_factory.mktemp("accounts"))


def start_accounts_region(node, car, store, count=ACCOUNTS):
    """A region serving accounts.XFER over `count` accounts of balance 1000; its URL."""
    node.esrt("server", "create", "ESACCT", "--seps", "3", "--listener",
              "Web Services=127.0.0.1:*", "--env", "DD_ACCOUNTS=ACCOUNTS",
              "--env", f"ACCOUNTS_COUNT={count}", *store)
    node.esrt("casstart", "-r", "ESACCT", "--wait")
    node.esrt("deploy", str(car), "--server", "ESACCT")
    app = PROGRAMS["XFER"]
    made = node.esrt("batch", "run", str(app.path(app.batch)), "--server", "ESACCT").stdout
    assert f"created ACCOUNTS with {count} accounts of balance 1000" in made
    return "http://" + node.region_status("ESACCT")["listeners"][0]["address"]


def transfer(client, source, target, amount):
    return client.call("accounts.XFER", {"LK-FROM": source, "LK-TO": target,
                                         "LK-AMOUNT": amount},
                       idempotency_key=str(uuid.uuid4()), retry_for=15.0)


def test_transfers_between_many_accounts_are_each_applied_once(node, accounts_car, store):
    url = start_accounts_region(node, accounts_car, store)
    replies, errors, lock = [], [], threading.Lock()

    def caller(seed):
        pick = random.Random(seed)
        with Client(url) as client:
            for _ in range(CALLS_EACH):
                source, target = pick.sample(range(1, ACCOUNTS + 1), 2)
                amount = pick.randint(1, 500)
                try:
                    reply = transfer(client, source, target, amount)
                except Exception as exc:  # noqa: BLE001 - collected: asserted empty below
                    errors.append(repr(exc))
                    continue
                with lock:
                    replies.append((source, target, amount, reply))

    threads = [threading.Thread(target=caller, args=(seed,)) for seed in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    updates = {account: [] for account in range(1, ACCOUNTS + 1)}
    last = {}
    for source, target, _, reply in replies:
        assert reply["LK-RESULT"] == "OK"
        for account, number, balance in (
                (source, reply["LK-FROM-UPDATES"], reply["LK-FROM-BALANCE"]),
                (target, reply["LK-TO-UPDATES"], reply["LK-TO-BALANCE"])):
            updates[account].append(number)
            if number > last.get(account, (0, None))[0]:
                last[account] = (number, balance)
    # Every account's transfers numbered 1, 2, ... with none missing and none twice.
    for account, numbers in updates.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), account
    moved = {account: 0 for account in updates}
    for source, target, amount, _ in replies:
        moved[source] -= amount
        moved[target] += amount
    for account, (_, balance) in last.items():
        assert balance == 1000 + moved[account], account
    with Client(url) as client:
        # The next transfer of two accounts finds them as the replies left them.
        final = transfer(client, 1, 2, 0)
        assert final["LK-FROM-UPDATES"] == len(updates[1]) + 1
        assert final["LK-FROM-BALANCE"] == 1000 + moved[1]
        assert final["LK-TO-BALANCE"] == 1000 + moved[2]
        assert transfer(client, 3, 3, 10)["LK-RESULT"] == "SA"
        assert transfer(client, 1, ACCOUNTS + 1, 10)["LK-RESULT"] == "NF"
        # A transfer that found no account changed nothing.
        assert transfer(client, 2, 1, 0)["LK-TO-UPDATES"] == len(updates[1]) + 2
