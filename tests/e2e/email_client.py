#!/usr/bin/env python3
"""Sends one message with Python's smtplib (SMTP or LMTP), as a mail server would, and prints
what the server answered as one JSON object: the test drives email-ingest through it.

  email_client.py --port P [--lmtp] [--starttls] --mail-from A --rcpt B [--rcpt C] FILE
"""
import argparse
import json
import smtplib
import ssl
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lmtp", action="store_true")
    parser.add_argument("--starttls", action="store_true")
    parser.add_argument("--mail-from", default="")
    parser.add_argument("--rcpt", action="append", default=[])
    parser.add_argument("file")
    args = parser.parse_args()
    with open(args.file, "rb") as f:
        message = f.read()

    result = {"rcpt": {}, "data": []}
    client = (smtplib.LMTP if args.lmtp else smtplib.SMTP)("127.0.0.1", args.port, timeout=60)
    try:
        code, _ = client.ehlo() if not args.lmtp else client.ehlo()
        result["ehlo"] = code
        result["extensions"] = sorted(client.esmtp_features.keys())
        if args.starttls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            code, _ = client.starttls(context=context)
            result["starttls"] = code
            client.ehlo()
        code, reply = client.mail(args.mail_from, ["BODY=8BITMIME", "SIZE=%d" % len(message)])
        result["mail"] = [code, reply.decode()]
        if code != 250:
            print(json.dumps(result))
            return
        accepted = []
        for rcpt in args.rcpt:
            code, reply = client.rcpt(rcpt)
            result["rcpt"][rcpt] = [code, reply.decode()]
            if code == 250:
                accepted.append(rcpt)
        if not accepted:
            print(json.dumps(result))
            return
        code, reply = client.data(message)
        result["data"].append([code, reply.decode()])
        if args.lmtp:
            # RFC 2033: one reply per accepted recipient; smtplib reads the first one only.
            for _ in accepted[1:]:
                code, reply = client.getreply()
                result["data"].append([code, reply.decode()])
        client.quit()
    except smtplib.SMTPServerDisconnected as error:
        result["disconnected"] = str(error)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
