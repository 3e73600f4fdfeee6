#!/usr/bin/env python3
"""A loopback SMTP server for the Mail tests, on aiosmtpd.

Prints "READY <port>" once it accepts connections, writes one JSON line per received message to --out (envelope,
raw content, and the subject and body as Python's email parser decodes them), and stops when stdin closes.

    smtp_server.py --out FILE [--cert PEM --key PEM] [--user NAME --password SECRET] [--reject ADDRESS]
    smtp_server.py --out FILE --inject

With --inject it is not aiosmtpd but a bare server that answers STARTTLS with 220 and, in the same write, a
plaintext "250" a man in the middle could have added.
"""
import asyncio
import argparse
import email
import email.policy
import json
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Handler:
    def __init__(self, out, reject):
        self.out = out
        self.reject = reject

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.reject:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "raw": raw.decode("utf-8", "replace"),
            "subject": str(message["subject"]),
            "body": message.get_content(),
            "content_type": message.get_content_type(),
            "charset": message.get_content_charset(),
            "date": str(message["date"]),
            "message_id": str(message["message-id"]),
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
        }
        with open(self.out, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        return "250 OK queued"


def run_injecting_server(port):
    async def serve(reader, writer):
        writer.write(b"220 injector ESMTP\r\n")
        while True:
            line = await reader.readline()
            if not line:
                break
            command = line.strip().upper()
            if command.startswith(b"EHLO"):
                writer.write(b"250-injector\r\n250 STARTTLS\r\n")
            elif command == b"STARTTLS":
                writer.write(b"220 go ahead\r\n250-injector\r\n250 AUTH PLAIN\r\n")
            else:
                writer.write(b"500 unexpected\r\n")
            await writer.drain()
        writer.close()

    async def main_loop():
        server = await asyncio.start_server(serve, "127.0.0.1", port)
        print(f"READY {port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(main_loop())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--reject")
    parser.add_argument("--inject", action="store_true")
    args = parser.parse_args()
    if args.inject:
        run_injecting_server(free_port())
        return

    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        valid = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == (args.user or "").encode()
            and auth_data.password == (args.password or "").encode()
        )
        # handled=False: aiosmtpd then answers 535 itself (with True it answers nothing).
        return AuthResult(success=valid, handled=False)

    options = {}
    if args.user:
        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=context is not None)
    port = free_port()
    controller = Controller(
        Handler(args.out, args.reject), hostname="127.0.0.1", port=port, tls_context=context,
        require_starttls=context is not None, ready_timeout=10, **options)
    controller.start()
    print(f"READY {port}", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
