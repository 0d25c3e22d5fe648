"""A subscriber that stops reading is disconnected at client-output-buffer-limit pubsub."""

import socket

from presence.testing import bundled_store
from tests.helpers import wait_until
from tests.store.rawclient import RawClient


def test_slow_subscriber_is_disconnected_and_others_keep_working():
    with bundled_store("--client-output-buffer-limit", "pubsub", "1mb", "256kb", "60") as port:
        slow = socket.create_connection(("127.0.0.1", port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(b"SUBSCRIBE news\r\n")
        publisher = RawClient(port)
        wait_until(
            lambda: publisher.call("PUBSUB", "NUMSUB", "news") == b"*2\r\n$4\r\nnews\r\n:1\r\n",
            message="the slow subscriber never subscribed",
        )
        payload = b"x" * 65536
        receivers = []
        for _ in range(200):  # 12.5 MiB, far past the 1 MiB hard limit
            receivers.append(publisher.call("PUBLISH", "news", payload))
        assert receivers[0] == b":1\r\n"
        assert receivers[-1] == b":0\r\n"  # the slow subscriber was dropped on the way
        info = publisher.call("PUBSUB", "NUMSUB", "news")
        assert info == b"*2\r\n$4\r\nnews\r\n:0\r\n"
        assert publisher.call("PING") == b"+PONG\r\n"
        publisher.close()
        slow.close()
