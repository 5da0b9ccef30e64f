"""A fake Stripe API at the HTTP boundary, for the StripeGateway tests.

``FakeStripe`` is a small threaded HTTP server on loopback that the real
``stripe`` library talks to (``StripeGateway(api_base=fake.url)``):

- Connect, which localstripe lacks, is served here: ``/v1/accounts``,
  ``/v1/account_links``, ``/v1/transfers``.
- Everything else (customers, payment methods, PaymentIntents, charges,
  refunds) is forwarded to a ``localstripe`` process, the stateful fake Stripe.
  Two Stripe behaviours localstripe does not have are added on the way:
  idempotency keys (a POST repeated with the same ``Idempotency-Key`` gets the
  first answer back, with ``Idempotent-Replayed: true``; the same key with other
  parameters is refused) and ``transfer_group`` on PaymentIntents.
- Two more Stripe behaviours: an off-session payment that needs 3-D Secure
  answers 402 ``authentication_required`` (localstripe leaves it
  ``requires_action``), and a succeeded SetupIntent's card is attached to its
  customer.
- Faults on demand (``fail_next``): answer 500 without doing anything, or do
  the work and then drop the connection / answer too late (a timeout after the
  charge was made).
- Every request is kept in ``requests`` (method, path, idempotency key, params)
  so tests can check what the library sent.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``metadata[escrow]=x``, ``types[0]=card``) -> nested dicts/lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def lists(node: Any) -> Any:
        if isinstance(node, dict):
            if node and all(k.isdigit() for k in node):
                return [lists(node[k]) for k in sorted(node, key=int)]
            return {k: lists(v) for k, v in node.items()}
        return node

    return lists(root)


def stripe_error(status: int, message: str, *, type_: str = "invalid_request_error", code: str = "") -> tuple:
    body = {"error": {"type": type_, "message": message}}
    if code:
        body["error"]["code"] = code
    return status, body, {}


@dataclass
class Fault:
    method: str
    path: str  # regex matched against the path
    mode: str  # "500", "drop_after", "slow_after"
    delay: float = 0.0


class LocalStripe:
    """localstripe as a subprocess on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> LocalStripe:
        exe = Path(__import__("sys").executable).with_name("localstripe")
        self.process = subprocess.Popen(
            [str(exe), "--port", str(self.port), "--from-scratch"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("localstripe exited at start-up") from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("localstripe did not start in 20 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


class FakeStripe:
    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = upstream
        self.lock = threading.Lock()
        self.reset()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- control ----------------------------------------------------------------
    def start(self) -> FakeStripe:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.accounts: dict[str, dict[str, Any]] = {}
            self.transfers: dict[str, dict[str, Any]] = {}
            self.idempotency: dict[str, tuple[str, str, int, dict[str, Any]]] = {}
            self.faults: list[Fault] = []
            self.requests: list[dict[str, Any]] = []
            self.transfer_groups: dict[str, str] = {}

    def fail_next(self, method: str, path: str, mode: str = "500", *, delay: float = 0.0, times: int = 1) -> None:
        with self.lock:
            self.faults.extend(Fault(method, path, mode, delay) for _ in range(times))

    def calls(self, method: str, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and re.fullmatch(path, r["path"])]

    def enable_payouts(self, account_id: str, enabled: bool = True) -> None:
        with self.lock:
            self.accounts[account_id].update(details_submitted=True, payouts_enabled=enabled, charges_enabled=enabled)

    # --- request handling -----------------------------------------------------------
    def handle(self, request: _Handler) -> None:
        parts = urlsplit(request.path)
        path = parts.path
        length = int(request.headers.get("Content-Length") or 0)
        raw_body = request.rfile.read(length).decode() if length else ""
        pairs = parse_qsl(raw_body, keep_blank_values=True) if request.command == "POST" else []
        query = parse_qsl(parts.query, keep_blank_values=True)
        params = unflatten(pairs or query)
        key = request.headers.get("Idempotency-Key")
        with self.lock:
            self.requests.append({"method": request.command, "path": path, "idempotency_key": key, "params": params})
            fault = next(
                (f for f in self.faults if f.method == request.command and re.fullmatch(f.path, path)), None
            )
            if fault:
                self.faults.remove(fault)
            replay = self.idempotency.get(key) if (key and request.command == "POST") else None

        if replay is not None:
            same = replay[0] == path and replay[1] == raw_body
            if not same:
                status, body, headers = stripe_error(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                    type_="idempotency_error",
                )
            else:
                status, body, headers = replay[2], replay[3], {"Idempotent-Replayed": "true"}
            return request.respond(status, body, headers)

        if fault and fault.mode == "500":
            return request.respond(*stripe_error(500, "Simulated internal error", type_="api_error"))

        status, body, headers = self.route(request, path, params, raw_body, parts.query)
        if key and request.command == "POST" and status < 500:
            with self.lock:
                self.idempotency[key] = (path, raw_body, status, body)

        if fault and fault.mode == "drop_after":
            request.drop()
            return None
        if fault and fault.mode == "slow_after":
            time.sleep(fault.delay)
        return request.respond(status, body, headers)

    def route(self, request: _Handler, path: str, params: dict[str, Any], raw_body: str, query: str) -> tuple:
        method = request.command
        if path == "/v1/accounts" and method == "POST":
            return self.create_account(params)
        if m := re.fullmatch(r"/v1/accounts/([^/]+)", path):
            return self.account(m.group(1), params if method == "POST" else None)
        if path == "/v1/account_links" and method == "POST":
            return self.create_account_link(params)
        if path == "/v1/transfers":
            return self.create_transfer(params) if method == "POST" else self.list_transfers(params)
        if m := re.fullmatch(r"/v1/transfers/([^/]+)", path):
            transfer = self.transfers.get(m.group(1))
            return (200, transfer, {}) if transfer else stripe_error(404, "No such transfer", code="resource_missing")
        return self.forward(request, path, params, raw_body, query)

    # --- Connect (not in localstripe) ---------------------------------------------
    def create_account(self, params: dict[str, Any]) -> tuple:
        if params.get("type") not in ("express", "standard", "custom"):
            return stripe_error(400, "Invalid type", code="parameter_invalid_empty")
        account = {
            "id": f"acct_{secrets.token_hex(8)}",
            "object": "account",
            "type": params["type"],
            "email": params.get("email"),
            "details_submitted": False,
            "payouts_enabled": False,
            "charges_enabled": False,
            "created": int(time.time()),
        }
        with self.lock:
            self.accounts[account["id"]] = account
        return 200, account, {}

    def account(self, account_id: str, update: dict[str, Any] | None) -> tuple:
        account = self.accounts.get(account_id)
        if account is None:
            return stripe_error(404, f"No such account: '{account_id}'", code="resource_missing")
        return 200, account, {}

    def create_account_link(self, params: dict[str, Any]) -> tuple:
        if params.get("account") not in self.accounts:
            return stripe_error(400, "No such account", code="resource_missing")
        for field in ("refresh_url", "return_url", "type"):
            if not params.get(field):
                return stripe_error(400, f"Missing required param: {field}.", code="parameter_missing")
        return 200, {
            "object": "account_link",
            "url": f"https://connect.example.test/setup/e/{params['account']}/{secrets.token_hex(6)}",
            "created": int(time.time()),
            "expires_at": int(time.time()) + 300,
        }, {}

    def create_transfer(self, params: dict[str, Any]) -> tuple:
        try:
            amount = int(params.get("amount", ""))
        except ValueError:
            return stripe_error(400, "Invalid integer: amount", code="parameter_invalid_integer")
        if amount <= 0:
            return stripe_error(400, "Amount must be at least 1 cent", code="parameter_invalid_integer")
        account = self.accounts.get(params.get("destination", ""))
        if account is None:
            return stripe_error(400, "No such destination", code="resource_missing")
        if not account["payouts_enabled"]:
            return stripe_error(
                400,
                "Your destination account needs to have at least one of the following capabilities enabled: transfers",
                code="insufficient_capabilities_for_transfer",
            )
        transfer = {
            "id": f"tr_{secrets.token_hex(8)}",
            "object": "transfer",
            "amount": amount,
            "currency": params.get("currency", "usd"),
            "destination": account["id"],
            "transfer_group": params.get("transfer_group"),
            "metadata": params.get("metadata") or {},
            "reversed": False,
            "created": int(time.time()),
        }
        with self.lock:
            self.transfers[transfer["id"]] = transfer
        return 200, transfer, {}

    def list_transfers(self, params: dict[str, Any]) -> tuple:
        items = sorted(self.transfers.values(), key=lambda t: (t["created"], t["id"]), reverse=True)
        created = params.get("created") or {}
        if "gt" in created:
            items = [t for t in items if t["created"] > int(created["gt"])]
        return 200, _page("/v1/transfers", items, params), {}

    # --- localstripe ------------------------------------------------------------------
    def forward(self, request: _Handler, path: str, params: dict[str, Any], raw_body: str, query: str) -> tuple:
        if not self.upstream:
            return stripe_error(404, f"Unrecognized request URL ({request.command}: {path})")
        transfer_group = None
        pairs = parse_qsl(raw_body, keep_blank_values=True)
        if request.command == "POST" and path == "/v1/payment_intents":
            transfer_group = params.get("transfer_group")
            pairs = [(k, v) for k, v in pairs if k != "transfer_group"]
        refunds_created = None
        if request.command == "GET" and path == "/v1/refunds":
            query_pairs = parse_qsl(query, keep_blank_values=True)
            refunds_created = unflatten(query_pairs).get("created")
            query = "&".join(f"{k}={v}" for k, v in query_pairs if not k.startswith("created"))
        data = urlencode(pairs).encode() if request.command == "POST" else None
        url = self.upstream + path + (f"?{query}" if query else "")
        upstream = urllib.request.Request(url, data=data, method=request.command)  # noqa: S310 (loopback http)
        upstream.add_header("Authorization", request.headers.get("Authorization", ""))
        if data is not None:
            upstream.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(upstream, timeout=20) as response:  # noqa: S310
                status, body = response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, json.loads(exc.read() or b"{}")
        if status == 200 and transfer_group and body.get("object") == "payment_intent":
            with self.lock:
                self.transfer_groups[body["id"]] = transfer_group
        if request.command == "POST" and path == "/v1/payment_intents" and status == 200:
            status, body = self._off_session_needs_authentication(params, body)
        if (
            request.command == "POST"
            and re.fullmatch(r"/v1/setup_intents/[^/]+/confirm", path)
            and status == 200
            and body.get("status") == "succeeded"
        ):
            self._attach_to_customer(body, request.headers.get("Authorization", ""))
        self._decorate(body)
        if refunds_created and "gt" in refunds_created and isinstance(body.get("data"), list):
            body["data"] = [r for r in body["data"] if r.get("created", 0) > int(refunds_created["gt"])]
        return status, body, {}

    def _off_session_needs_authentication(self, params: dict[str, Any], body: dict[str, Any]) -> tuple:
        """Stripe, unlike localstripe, does not leave an off-session payment
        waiting for 3-D Secure: it answers 402 ``authentication_required``
        (a card_error naming the PaymentIntent, now requires_payment_method)."""
        if params.get("off_session") != "true" or body.get("status") != "requires_action":
            return 200, body
        intent = dict(body, status="requires_payment_method", next_action=None)
        error = {
            "type": "card_error",
            "code": "authentication_required",
            "decline_code": "authentication_required",
            "message": "Your card was declined. This transaction requires authentication.",
            "payment_intent": intent,
        }
        return 402, {"error": error}

    def _attach_to_customer(self, seti: dict[str, Any], authorization: str) -> None:
        """Stripe attaches a SetupIntent's card to its customer when it succeeds; localstripe does not."""
        pm, customer = seti.get("payment_method"), seti.get("customer")
        if not (isinstance(pm, str) and isinstance(customer, str)):
            return
        attach = urllib.request.Request(  # noqa: S310 (loopback http)
            f"{self.upstream}/v1/payment_methods/{pm}/attach",
            data=urlencode({"customer": customer}).encode(),
            method="POST",
        )
        attach.add_header("Authorization", authorization)
        attach.add_header("Content-Type", "application/x-www-form-urlencoded")
        with contextlib.suppress(urllib.error.HTTPError), urllib.request.urlopen(attach, timeout=20):  # noqa: S310
            pass

    def _decorate(self, body: Any) -> None:
        if isinstance(body, dict):
            if body.get("object") == "payment_intent":
                body["transfer_group"] = self.transfer_groups.get(body.get("id"))
            for item in body.get("data", []) if isinstance(body.get("data"), list) else []:
                self._decorate(item)


def _page(url: str, items: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    limit = int(params.get("limit") or 10)
    after = params.get("starting_after")
    if after:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return {"object": "list", "url": url, "data": items[:limit], "has_more": len(items) > limit}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.fake.handle(self)  # type: ignore[attr-defined]

    do_POST = do_GET
    do_DELETE = do_GET

    def respond(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def drop(self) -> None:
        """Close without answering: to the client it is a network error after the work was done."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
