"""moto server with DynamoDB made isolated, as DynamoDB is.

moto's server handles requests on threads and its DynamoDB backend takes no lock, so two
TransactWriteItems can both pass their conditions and both write (seen: two claims of one
Service port, each `attribute_not_exists`). Real DynamoDB never does that. This launcher runs
moto's own server with every DynamoDB backend call under one lock; other services stay
concurrent (SQS long polls must not stall the bed).

Usage: python moto_server.py -H 127.0.0.1 -p PORT   (the arguments of moto_server)
"""

import functools
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_LOCK = threading.RLock()


def _serialized(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


for _name, _value in list(vars(DynamoDBBackend).items()):
    if callable(_value) and not _name.startswith("_"):
        setattr(DynamoDBBackend, _name, _serialized(_value))

if __name__ == "__main__":
    main()
