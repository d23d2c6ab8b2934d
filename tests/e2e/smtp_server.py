"""A real SMTP server for reqsync's notification tests (aiosmtpd), on 127.0.0.1.

It offers STARTTLS (with the certificate and key given), refuses MAIL before STARTTLS, accepts
AUTH LOGIN/PLAIN only over TLS and only with the given user name and password, and writes every
message it accepts to OUT_DIR/NNNN.json: the envelope, the raw message, whether the session was
encrypted and which login it used, and the subject and decoded text of the message. It prints "PORT <n>" once listening, and runs until stdin
closes (the test holding the pipe ends, so does the server).

    python smtp_server.py CERT KEY USER PASSWORD OUT_DIR
"""

import email
import email.policy
import json
import os
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main() -> None:
    cert, key, user, password, out_dir = sys.argv[1:6]
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # `handled=False` on failure: aiosmtpd then answers 535 itself (with its default,
        # `handled=True`, it answers nothing and the client waits).
        return AuthResult(
            success=ok,
            handled=False,
            auth_data=auth_data.login.decode() if ok else None,
        )

    class Handler:
        count = 0

        async def handle_DATA(self, server, session, envelope):
            Handler.count += 1
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            record = {
                "subject": str(message["subject"]),
                # The text as the recipient reads it (quoted-printable decoded).
                "body": message.get_content(),
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "tls": session.ssl is not None,
                "authenticated": bool(session.authenticated),
                "login": session.auth_data,
                "data": envelope.content.decode("utf-8", "replace"),
            }
            path = os.path.join(out_dir, "%04d.json" % Handler.count)
            with open(path + ".tmp", "w") as f:
                json.dump(record, f)
            os.replace(path + ".tmp", path)
            return "250 Message accepted for delivery"

    # A free port, then the server on it (aiosmtpd's controller checks readiness by
    # connecting to its port, which must be known).
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticator,
    )
    controller.start()
    print("PORT %d" % port, flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
