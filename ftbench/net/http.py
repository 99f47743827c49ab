"""A small client for OpenAI-compatible `POST /chat/completions` and `POST /completions`, with the retries a
long batch job needs and the limits a hostile or broken server cannot get around: the project's one HTTP client
(`augment llm`, the `openai` generation engine and lm-eval's hand-over use it).

Standard library `http.client`, not urllib and not httpx (docs/scaling.md says why): http.client follows no
redirect by itself (urllib's handler re-sent the Authorization header to whatever origin a 301 named), and no
client library has a total deadline per request (httpx's timeouts, like the socket's, bound each read, so a
server sending one byte a second never trips them: encode/httpx#1450); `watchdog.Watchdog` gives one.

* Deadline: ``timeout`` seconds per request in total (connect, headers, body); past it the socket is shut.
* Redirects: followed only to the same origin (scheme, host, port), re-sent as the same POST, at most
  `MAX_REDIRECTS` times; another origin is refused in one line (the request carries the key).
* Size: a reply larger than `reply_cap(max_tokens)` is refused unread (Content-Length) or as soon as it passes.
* Schema: the text must be a string (null, numbers, lists and objects are bad replies, retried); lone surrogates
  become U+FFFD.
* Retried with exponential backoff and full jitter: 429, 408, 5xx, timeouts, refused/reset connections and bad
  replies. `Retry-After` (seconds or an HTTP date) is honoured up to `RetryPolicy.max_retry_after` and no longer
  than one reply may take; a wait of a second or more is announced. It pauses every worker, not just the one told.
* Not retried: 401/403/404 stop the whole run (every request would fail the same way); other 4xx and a reply too
  large fail the one request.
* The API key only ever goes into the Authorization header. Server text reaches a message only through
  `text.shown`: key masked first, control characters removed, then shortened.
* Ctrl-C: setting ``stop`` shuts every socket in flight, so no worker thread keeps the process alive.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import random
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from ftbench.api.errors import UsageError
from ftbench.net.text import Redactor, error_message, repair_surrogates, shown
from ftbench.net.watchdog import Watchdog

__all__ = ["Redactor"]  # re-exported: callers take the client and its redactor from one place

READ_CHUNK = 1 << 16
MAX_REDIRECTS = 3
CONNECT_TIMEOUT = 10.0  # a connect that hangs is not shut by the watchdog (its socket is not ours yet)
ERROR_BODY_BYTES = 1 << 16  # read of an error reply, for its message
REPLY_BASE_BYTES = 1 << 20  # the JSON around the text, usage, ids: generous
REPLY_BYTES_PER_TOKEN = 64  # a token is a few characters; JSON-escaped CJK is 6 bytes each
REPLY_UNBOUNDED_BYTES = 32 << 20  # no max_tokens in the request
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REDIRECTS = (301, 302, 303, 307, 308)


def api_key_from_env(name: str) -> str | None:
    """The API key in environment variable ``name`` (None if unset): keys come only from the environment."""
    if not _ENV_NAME.fullmatch(name):
        # not repeated back: what was given may well be the key itself, pasted in the wrong place
        raise UsageError("--api-key-env takes the NAME of an environment variable (like OPENAI_API_KEY), not the key")
    return os.environ.get(name) or None


def reply_cap(max_tokens) -> int:
    """The most bytes a reply to a request for ``max_tokens`` tokens may have."""
    if isinstance(max_tokens, int) and max_tokens > 0:
        return REPLY_BASE_BYTES + REPLY_BYTES_PER_TOKEN * max_tokens
    return REPLY_UNBOUNDED_BYTES


@dataclass
class Completion:
    """One successful reply: its text, token usage and how many retries it took."""

    text: str
    usage: dict = field(default_factory=dict)  # prompt_tokens, completion_tokens, total_tokens
    finish_reason: str | None = None
    retries: int = 0


class RequestFailed(Exception):
    """A request that cannot succeed now: retries exhausted, or a 4xx that retrying will not fix."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class Interrupted(Exception):
    """The run is stopping (Ctrl-C): give up waiting."""


class _Retryable(Exception):
    def __init__(self, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind, self.retry_after = kind, retry_after


@dataclass
class RetryPolicy:
    """How often and how long to wait before retrying a request."""

    max_retries: int = 5
    base: float = 1.0  # the first retry waits up to this long; each later one up to twice as long
    cap: float = 60.0  # longest backoff
    max_retry_after: float = 60.0  # a Retry-After beyond this is capped (a broken header must not hang the run)

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = rng.uniform(0.0, min(self.cap, self.base * 2**retry))
        if retry_after is None:
            return backoff
        return min(max(retry_after, backoff), self.max_retry_after)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
        return seconds if 0 <= seconds < float("inf") else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    try:
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    except (OverflowError, ValueError, OSError):
        return None


CHAT = "chat/completions"
COMPLETIONS = "completions"


def completions_url(base_url: str, endpoint: str = CHAT) -> str:
    """`https://host/v1` -> `https://host/v1/chat/completions` (or `.../completions`); a base URL given with
    either endpoint at its end has it replaced by the one asked for."""
    url = base_url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--base-url {base_url}: expected an http:// or https:// URL")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or not parts.hostname:
        raise UsageError(f"--base-url {base_url}: not a URL ftbench can reach (expected http://HOST[:PORT]/...)")
    for suffix in ("/" + CHAT, "/" + COMPLETIONS):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
            break
    return f"{url}/{endpoint}"


def _origin(url: str) -> tuple[str, str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


class ChatClient:
    """Sends chat-completion (or, with ``endpoint=COMPLETIONS``, completion) requests; thread-safe (each call
    opens its own connection). ``notify(message)`` hears about long Retry-After waits (default: stderr)."""

    def __init__(
        self,
        base_url: str,
        model: str | None,
        api_key: str | None,
        *,
        key_source: str,
        timeout: float,
        policy: RetryPolicy,
        redact: Redactor,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: threading.Event | None = None,
        on_retry=None,
        endpoint: str = CHAT,
        user_agent: str = "ftbench-augment",
        notify=None,
    ):
        self.url, self.model, self.timeout, self.policy = completions_url(base_url, endpoint), model, timeout, policy
        self.endpoint = endpoint
        self.key_source, self.redact = key_source, redact
        self.temperature, self.max_tokens = temperature, max_tokens
        self.stop = stop or threading.Event()
        self.on_retry = on_retry or (lambda kind, delay: None)
        self.notify = notify or _say
        self._headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": user_agent}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._has_key = bool(api_key)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._not_before = 0.0  # monotonic time before which nobody sends (set by Retry-After)
        self._watchdog = Watchdog(self.stop)

    def complete(self, messages: list[dict]) -> Completion:
        """The reply to ``messages``, after up to max_retries retries; RequestFailed when it cannot be had."""
        payload = {"messages": messages}
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens
        return self.request(payload)

    def request(self, payload: dict) -> Completion:
        """POST ``payload`` (plus the model name, if one was given) to the endpoint, retrying as the module
        docstring says; the text is the chat message's content or the completion's text."""
        payload = {"model": self.model, **payload} if self.model else payload
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        cap = reply_cap(payload.get("max_tokens"))
        for retry in range(self.policy.max_retries + 1):
            self._wait_for_pause()
            try:
                completion = self._post(body, cap)
                completion.retries = retry
                return completion
            except _Retryable as e:
                if retry == self.policy.max_retries:
                    raise RequestFailed(e.kind, f"{e} (gave up after {retry} retries)") from None
                delay = self._delay(retry, e)
                self.on_retry(e.kind, delay)
                if self.stop.wait(delay):
                    raise Interrupted() from None
        raise AssertionError("unreachable")

    def _delay(self, retry: int, e: _Retryable) -> float:
        """The wait before retry ``retry + 1``; a server's Retry-After is capped (at most what one reply may take,
        and `max_retry_after`), pauses every worker, and is announced when it is a second or more."""
        with self._lock:
            limit = min(self.policy.max_retry_after, self.timeout)
            policy = RetryPolicy(self.policy.max_retries, self.policy.base, self.policy.cap, limit)
            delay = policy.delay(retry, e.retry_after, self._rng)
            if e.retry_after is None:
                return delay
            self._not_before = max(self._not_before, time.monotonic() + delay)
        if delay >= 1.0:
            capped = f", capped at {delay:g} s" if e.retry_after > delay else ""
            self.notify(
                f"{self.url}: {e}; the server asks to wait {e.retry_after:g} s (Retry-After){capped}: "
                f"waiting {delay:g} s"
            )
        return delay

    def _wait_for_pause(self) -> None:
        while True:
            with self._lock:
                wait = self._not_before - time.monotonic()
            if wait <= 0:
                return
            if self.stop.wait(wait):
                raise Interrupted()

    def _post(self, body: bytes, cap: int) -> Completion:
        url = self.url
        for _ in range(MAX_REDIRECTS + 1):
            status, headers, raw = self._exchange(url, body, cap)
            if status not in _REDIRECTS:
                break
            url = self._redirect(url, headers.get("Location"))
        else:
            raise RequestFailed("redirect", f"more than {MAX_REDIRECTS} redirects; give the final URL as --base-url")
        if status != 200:
            self._http_error(status, headers, raw)
        return self._completion(raw)

    def _redirect(self, url: str, location: str | None) -> str:
        """The same-origin URL a redirect names; another origin is refused (the request carries the key)."""
        # percent-encoded: a header is Latin-1, a request line ASCII
        target = urllib.parse.quote(urllib.parse.urljoin(url, location or ""), safe=":/?#[]@!$&'()*+,;=%~")
        if not location or _origin(target) != _origin(url):
            where = shown(target, self.redact, 120) if location else "nowhere"
            raise UsageError(
                f"{self.url}: the server redirects to {where}, another origin; not followed (the "
                "request would carry the API key there): give the final URL as --base-url"
            )
        return target

    def _exchange(self, url: str, body: bytes, cap: int) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One POST within the deadline: (status, headers, body of at most ``cap`` bytes)."""
        parts = urllib.parse.urlsplit(url)
        deadline = time.monotonic() + self.timeout
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn = kind(parts.hostname, parts.port, timeout=min(self.timeout, CONNECT_TIMEOUT))
        sock = None
        try:
            conn.connect()
            sock = conn.sock  # kept: http.client drops conn.sock once a "Connection: close" reply's head is read
            self._watchdog.watch(sock, deadline)
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            conn.request("POST", path or "/", body, self._headers)
            response = conn.getresponse()
            limit = cap if response.status == 200 else ERROR_BODY_BYTES
            raw = self._read(response, limit, cut=response.status != 200)
            if self.stop.is_set() or time.monotonic() >= deadline:
                raise TimeoutError()  # the watchdog shut the socket: what was read may be cut anywhere
            return response.status, response.headers, raw
        except (OSError, http.client.HTTPException, ValueError) as e:
            if self.stop.is_set():
                raise Interrupted() from None
            if time.monotonic() >= deadline or isinstance(e, (TimeoutError, socket.timeout)):
                raise _Retryable("timeout", f"no complete reply within {self.timeout:g} s") from None
            what = (isinstance(e, OSError) and e.strerror) or type(e).__name__
            raise _Retryable(
                "connection", f"connection to {self.url} failed: {shown(str(what), self.redact)}"
            ) from None
        finally:
            if sock is not None:
                self._watchdog.forget(sock)
            conn.close()

    def _read(self, response, limit: int, *, cut: bool) -> bytes:
        """The body, refused (RequestFailed) past ``limit`` bytes, or with ``cut`` just its first ``limit``."""
        length = response.getheader("Content-Length")
        if not cut and length and length.strip().isdigit() and int(length) > limit:
            self._too_large(limit)
        chunks, size = [], 0
        while size <= limit:
            chunk = response.read(min(READ_CHUNK, limit + 1 - size))
            if not chunk:
                if response.length:  # http.client returns a body cut short by a closed socket as it is
                    raise http.client.IncompleteRead(b"", response.length)
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
        if cut:
            return b"".join(chunks)[:limit]
        self._too_large(limit)

    def _too_large(self, limit: int):
        raise RequestFailed(
            "too-large",
            f"the reply is larger than {limit / 2**20:.1f} MB, more than "
            "any answer of the requested max_tokens; not read (check --base-url)",
        )

    def _http_error(self, status: int, headers, raw: bytes):
        detail = error_message(raw, self.redact)
        what = f"HTTP {status}" + (f": {detail}" if detail else "")
        if status == 429 or status == 408 or status >= 500:
            kind = "429" if status == 429 else "5xx" if status >= 500 else "timeout"
            raise _Retryable(kind, what, parse_retry_after(headers.get("Retry-After")))
        if status in (401, 403):
            hint = (
                f"check the key in ${self.key_source}"
                if self._has_key
                else f"no API key was sent: set ${self.key_source} (or name another variable with --api-key-env)"
            )
            raise UsageError(f"{self.url} refused the request ({what}); {hint}")
        if status == 404:
            raise UsageError(
                f"{self.url}: {what}; check --base-url (most servers want it to end in /v1)"
                + (f" and the model name {self.model}" if self.model else "")
            )
        raise RequestFailed(f"http-{status}", what)

    def _completion(self, raw: bytes) -> Completion:
        what = "a chat completion" if self.endpoint == CHAT else "a completion"
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = choice["message"]["content"] if self.endpoint == CHAT else choice["text"]
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):
            # a proxy's HTML page or an error object with status 200: transient more often than not
            raise _Retryable(
                "bad-response", f"the reply is not {what}: " + (error_message(raw, self.redact, 120) or "(empty)")
            ) from None
        if not isinstance(text, str):
            field_name = "message.content" if self.endpoint == CHAT else "text"
            raise _Retryable(
                "bad-response", f"the reply is not {what}: choices[0].{field_name} is {_json_kind(text)}, not a string"
            )
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        finish = choice.get("finish_reason")
        # a server that echoes the key into its answer must not get it written into a predictions file
        return Completion(
            self.redact.partial(repair_surrogates(text)), usage, finish if isinstance(finish, str) else None
        )


def _json_kind(value) -> str:
    return {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _say(message: str) -> None:
    from ftbench.console import say

    say(message)
