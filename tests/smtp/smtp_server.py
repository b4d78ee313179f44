#!/usr/bin/python3
"""A real SMTP server for mongo-backupd's integration tests.

Built on aiosmtpd (Debian package ``python3-aiosmtpd``; written against 1.4.3)
and meant to be run with Debian's ``/usr/bin/python3``.  It is driven by
``tests/common/smtp.rs``:

* ``--mode plain``     plain SMTP, no TLS at all;
* ``--mode starttls``  STARTTLS offered and required before MAIL;
* ``--mode tls``       implicit TLS: the socket is TLS from the first byte.

Every accepted message is written atomically to ``--maildir`` as
``<seq>.eml`` (the raw DATA bytes) after its sidecar ``<seq>.json``
(envelope, TLS, authenticated user -- never the password), so a reader that
sees ``<seq>.eml`` can always read ``<seq>.json``.

When the listener is bound, ``READY <port>`` is printed on stdout.  SIGTERM
(or SIGINT) closes the listener and exits with status 0.  The protocol log
goes to stderr.

aiosmtpd 1.4.3 quirks handled here:

* ``Controller`` is not used: with ``port=0`` its start-up self-test connects
  to port 0, and it cannot report the port it bound.  We run
  ``loop.create_server`` ourselves.
* With implicit TLS (``create_server(ssl=...)``) aiosmtpd does not know the
  connection is encrypted (it only tracks STARTTLS): ``auth_require_tls=True``
  would hide AUTH from EHLO and answer 538, and ``session.ssl`` stays None.
  So in ``tls`` mode ``auth_require_tls`` is False (the transport is TLS
  anyway) and the TLS flag is read from the transport's ``ssl_object``.
* ``tls_context`` must not be given in ``tls`` mode, or STARTTLS would be
  offered inside the TLS session.
"""

import argparse
import asyncio
import errno
import hmac
import json
import logging
import os
import re
import signal
import ssl
import sys
import warnings

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        "smtp_server.py: cannot import aiosmtpd (%s) with %s.\n"
        "Install Debian's package: apt-get install python3-aiosmtpd "
        "(and run this script with /usr/bin/python3).\n" % (exc, sys.executable)
    )
    sys.exit(3)

LOG = logging.getLogger("smtp_server")
EML_RE = re.compile(r"^(\d+)\.eml$")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    p.add_argument("--mode", choices=("plain", "starttls", "tls"), default="plain")
    p.add_argument("--cert", help="PEM certificate chain (leaf first)")
    p.add_argument("--key", help="PEM private key of the leaf")
    p.add_argument("--auth", metavar="USER:PASSWORD", help="require AUTH with these credentials")
    p.add_argument(
        "--auth-plaintext",
        action="store_true",
        help="allow AUTH on a connection that is not encrypted",
    )
    p.add_argument("--maildir", required=True)
    p.add_argument("--reject", type=int, metavar="CODE", help="answer every RCPT TO with CODE")
    args = p.parse_args(argv)
    if args.mode != "plain" and not (args.cert and args.key):
        p.error("--mode %s needs --cert and --key" % args.mode)
    if args.auth is not None and ":" not in args.auth:
        p.error("--auth must be USER:PASSWORD")
    if args.reject is not None and not 400 <= args.reject <= 599:
        p.error("--reject must be a 4xx or 5xx code")
    return args


def write_atomically(path, data):
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, ".%s.%d.tmp" % (name, os.getpid()))
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def ssl_object_of(server):
    transport = server.transport
    if transport is None:
        return None
    return transport.get_extra_info("ssl_object")


class Handler:
    def __init__(self, maildir, reject):
        self.maildir = maildir
        self.reject = reject
        # Continue numbering after whatever is already there (restart keeps
        # the maildir and must not overwrite older messages).
        existing = [
            int(m.group(1))
            for m in (EML_RE.match(n) for n in os.listdir(maildir))
            if m
        ]
        self.last_seq = max(existing, default=0)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject is not None:
            code = self.reject
            enhanced = "%d.%d.0" % (code // 100, 2 if code // 100 == 4 else 1)
            kind = "temporarily" if code // 100 == 4 else "permanently"
            return "%d %s <%s> %s rejected (simulated by --reject)" % (
                code,
                enhanced,
                address,
                kind,
            )
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.last_seq += 1
        seq = self.last_seq
        ssl_obj = ssl_object_of(server)
        tls = ssl_obj is not None or session.ssl is not None
        auth_user = session.auth_data if session.authenticated else None
        if isinstance(auth_user, bytes):
            auth_user = auth_user.decode("utf-8", "replace")
        elif auth_user is not None and not isinstance(auth_user, str):
            auth_user = None  # never risk serialising credentials
        meta = {
            "sequence": seq,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "tls": tls,
            "tls_version": ssl_obj.version() if ssl_obj is not None else None,
            "auth_user": auth_user,
            "peer": list(session.peer) if session.peer else None,
            "helo": session.host_name,
        }
        content = envelope.original_content
        if content is None:
            content = envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        base = os.path.join(self.maildir, "%06d" % seq)
        # Sidecar first: whoever sees the .eml can rely on the .json.
        write_atomically(base + ".json", json.dumps(meta, indent=2).encode("utf-8"))
        write_atomically(base + ".eml", content)
        LOG.info("stored message %06d from %r to %r (tls=%s, auth_user=%r)",
                 seq, envelope.mail_from, envelope.rcpt_tos, tls, auth_user)
        return "250 2.0.0 OK queued as %06d" % seq


def make_authenticator(user, password):
    user_b = user.encode("utf-8")
    password_b = password.encode("utf-8")

    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok_user = hmac.compare_digest(auth_data.login, user_b)
        ok_password = hmac.compare_digest(auth_data.password, password_b)
        if ok_user and ok_password:
            LOG.info("AUTH %s succeeded for %r", mechanism, user)
            # Keep only the user name in the session: it ends up in the sidecar.
            return AuthResult(success=True, auth_data=user)
        LOG.info("AUTH %s failed for %r", mechanism, auth_data.login)
        # handled=False, no message -> aiosmtpd answers "535 5.7.8 ..."
        return AuthResult(success=False, handled=False)

    return authenticator


async def serve(args):
    loop = asyncio.get_running_loop()
    handler = Handler(args.maildir, args.reject)

    tls_ctx = None
    if args.mode != "plain":
        tls_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_ctx.load_cert_chain(args.cert, args.key)

    smtp_kwargs = {
        "hostname": "localhost",
        "ident": "mongo-backupd test SMTP (aiosmtpd)",
        "enable_SMTPUTF8": True,
        "decode_data": False,
        "timeout": 60,
    }
    if args.mode == "starttls":
        smtp_kwargs["tls_context"] = tls_ctx
        smtp_kwargs["require_starttls"] = True
    if args.auth is not None:
        user, _, password = args.auth.partition(":")
        smtp_kwargs["auth_required"] = True
        smtp_kwargs["authenticator"] = make_authenticator(user, password)
        # aiosmtpd only recognises STARTTLS as "encrypted"; see module doc.
        smtp_kwargs["auth_require_tls"] = args.mode != "tls" and not args.auth_plaintext
    else:
        smtp_kwargs["auth_require_tls"] = True

    def factory():
        return SMTP(handler, loop=loop, **smtp_kwargs)

    server = await loop.create_server(
        factory,
        host=args.host,
        port=args.port,
        ssl=tls_ctx if args.mode == "tls" else None,
        reuse_address=True,
    )
    port = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    LOG.info("listening on %s:%d mode=%s auth=%s reject=%s maildir=%s",
             args.host, port, args.mode, args.auth is not None, args.reject, args.maildir)
    sys.stdout.write("READY %d\n" % port)
    sys.stdout.flush()

    await stop.wait()
    LOG.info("signal received, shutting down")
    server.close()
    await server.wait_closed()


def main(argv):
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # Expected in this test server: AUTH allowed without STARTTLS in tls mode.
    warnings.simplefilter("ignore")
    os.makedirs(args.maildir, exist_ok=True)
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        sys.stderr.write("smtp_server.py: cannot listen on %s:%d: %s\n" % (args.host, args.port, exc))
        # Exit status 4 tells the harness to retry (restart on a lingering port).
        return 4 if exc.errno == errno.EADDRINUSE else 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
