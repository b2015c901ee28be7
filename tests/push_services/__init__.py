"""Local stand-ins for the push services, checking what the real ones check.

- webpush.py: a push service (RFC 8030) that verifies the VAPID JWT against the ``k=`` key and
  decrypts the ``aes128gcm`` body with the subscription's private key;
- fcm.py: Google's OAuth token endpoint (verifies the service account's RS256 assertion, issues
  bearer tokens) and the FCM HTTP v1 send endpoint (checks the bearer and the message shape);
- apns.py: APNs over HTTP/2 (h2, prior knowledge), checking the ES256 provider token and headers.

Each can be told to answer an error status for chosen tokens (``fail``). They run inside a test's
event loop (``await service.start()``) or as a process (``python -m tests.push_services.webpush``).
"""
