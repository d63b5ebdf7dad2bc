"""moto server with DynamoDB made isolated, as DynamoDB is, and its transactions cheap.

moto's server handles requests on threads and its DynamoDB backend takes no lock, so two
TransactWriteItems can both pass their conditions and both write (seen: two claims of one
Service port, each `attribute_not_exists`). Real DynamoDB never does that. This launcher runs
moto's own server with every DynamoDB backend call under one lock; other services stay
concurrent (SQS long polls must not stall the bed).

Under that lock, moto's TransactWriteItems backs up the whole table with `copy.deepcopy` once
per item of the transaction, in case it must roll back: 80 ms for a table of 1,000 claims on
this machine, so a claim (3 items) held the lock a quarter of a second and 50 handlers waited
past the SDK's 10 s attempt timeout (the 500-Services concurrency test failed on it). Here the
backup is of the items the transaction names, taken before it runs and put back if it is
cancelled: what moto answers is unchanged, it just costs O(items in the transaction).

ELBv2 answers as AWS does where the listener options meet it (see elbv2_as_aws.py).

Usage: python moto_server.py -H 127.0.0.1 -p PORT   (the arguments of moto_server)
"""

import copy
import functools
import threading
import types

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.server import main

import elbv2_as_aws

_LOCK = threading.RLock()


def _serialized(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


def _deepcopy_but_tables(value, memo=None):
    """copy.deepcopy, except that a table is not copied (its items are backed up instead)."""
    if isinstance(value, Table):
        return value
    return copy.deepcopy(value, memo)


def _item_key(table, op_type, op):
    """The (hash, range) key a transaction item touches, as moto computes it; None if moto will
    refuse the item anyway (then nothing of it needs a backup)."""
    try:
        attrs = op["Item"] if op_type == "Put" else op["Key"]
        hash_value = DynamoType(attrs[table.hash_key_attr])
        range_value = None
        if table.range_key_attr is not None:
            range_value = DynamoType(attrs[table.range_key_attr])
        return hash_value, range_value
    except (KeyError, TypeError, AttributeError):
        return None


def _backup(backend, transact_items):
    """(table, hash, range, a copy of the item or None) for each item the transaction names."""
    saved = []
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            table = backend.tables.get(op.get("TableName"))
        except (StopIteration, AttributeError):
            continue
        if table is None:
            continue
        key = _item_key(table, op_type, op)
        if key is None:
            continue
        hash_value, range_value = key
        try:
            current = table.get_item(hash_value, range_value)
        except Exception:  # moto refuses this key: the transaction writes nothing of it
            continue
        saved.append((table, hash_value, range_value, copy.deepcopy(current)))
    return saved


def _restore(saved):
    """Puts the backed-up items back, the earliest backup of a key last (so it wins)."""
    for table, hash_value, range_value, item in reversed(saved):
        if range_value is None:
            if item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item
        elif item is None:
            table.items.get(hash_value, {}).pop(range_value, None)
        else:
            table.items[hash_value][range_value] = item


_original_transact = DynamoDBBackend.transact_write_items


def _transact_write_items(self, transact_items):
    saved = _backup(self, transact_items)
    try:
        return _original_transact(self, transact_items)
    except Exception:
        # moto's own rollback put the same (live) tables back: undo the items' writes here.
        _restore(saved)
        raise


# moto's module reads `copy.deepcopy`; tables are no longer copied, everything else still is.
dynamodb_models.copy = types.SimpleNamespace(deepcopy=_deepcopy_but_tables, copy=copy.copy)
DynamoDBBackend.transact_write_items = _transact_write_items

for _name, _value in list(vars(DynamoDBBackend).items()):
    if callable(_value) and not _name.startswith("_"):
        setattr(DynamoDBBackend, _name, _serialized(_value))

elbv2_as_aws.install()

if __name__ == "__main__":
    main()
