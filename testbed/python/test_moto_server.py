"""The launcher's cheap transaction rollback answers as moto's own (and DynamoDB) does.

Run with the moto venv's python: python -m unittest discover -s testbed/python
"""

import unittest

from moto.dynamodb.exceptions import (
    MultipleTransactionsException,
    TransactionCanceledException,
)
from moto.dynamodb.models.table import Table

import moto_server

ACCOUNT = "123456789012"


def backend_with_table():
    backend = moto_server.DynamoDBBackend("us-east-1", ACCOUNT)
    backend.tables["t"] = Table(
        "t",
        account_id=ACCOUNT,
        region="us-east-1",
        schema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        attr=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )
    backend.put_item("t", {"pk": {"S": "nlb"}, "sk": {"S": "meta"}, "n": {"N": "1"}})
    backend.put_item("t", {"pk": {"S": "nlb"}, "sk": {"S": "port#1"}, "uid": {"S": "a"}})
    return backend


def snapshot(backend):
    return sorted(
        (str(h), str(r), repr(sorted(item.to_json()["Attributes"].items())))
        for h, by_range in backend.tables["t"].items.items()
        for r, item in by_range.items()
    )


def key(sk):
    return {"pk": {"S": "nlb"}, "sk": {"S": sk}}


def add_one():
    return {
        "Update": {
            "TableName": "t",
            "Key": key("meta"),
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }


def put_new(sk):
    return {
        "Put": {
            "TableName": "t",
            "Item": {**key(sk), "uid": {"S": "b"}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def delete(sk):
    return {"Delete": {"TableName": "t", "Key": key(sk)}}


class CheapRollback(unittest.TestCase):
    def test_a_transaction_that_passes_writes_every_item(self):
        backend = backend_with_table()
        backend.transact_write_items([add_one(), put_new("port#2"), delete("port#1")])
        rows = snapshot(backend)
        self.assertEqual(len(rows), 2)
        self.assertIn("'N': '2'", rows[0][2])
        self.assertEqual(rows[1][1], "DynamoType: {'S': 'port#2'}")

    def test_a_cancelled_transaction_leaves_every_item_as_it_was(self):
        # The update and the delete come before and after the failing condition: moto writes
        # both before it finds the failure, so both must be undone.
        backend = backend_with_table()
        backend.put_item("t", {**key("port#9"), "uid": {"S": "c"}})
        before = snapshot(backend)
        with self.assertRaises(TransactionCanceledException):
            backend.transact_write_items(
                [add_one(), put_new("port#3"), put_new("port#1"), delete("port#9")]
            )
        self.assertEqual(snapshot(backend), before)

    def test_two_writes_of_one_item_are_refused_and_leave_it_as_it_was(self):
        backend = backend_with_table()
        before = snapshot(backend)
        with self.assertRaises(MultipleTransactionsException):
            backend.transact_write_items([add_one(), put_new("port#4"), add_one()])
        self.assertEqual(snapshot(backend), before)

    def test_the_table_is_not_copied(self):
        backend = backend_with_table()
        table = backend.tables["t"]
        with self.assertRaises(TransactionCanceledException):
            backend.transact_write_items([put_new("port#1")])
        self.assertIs(backend.tables["t"], table)


if __name__ == "__main__":
    unittest.main()
