"""A small client for OpenAI-compatible `POST /chat/completions` and `POST /completions`, with the retries a
long batch job needs: the project's one HTTP client (`augment llm` and the `openai` generation engine use it).

Standard library only (`urllib` + the caller's threads): one blocking request per worker thread is all a
job that waits seconds per reply needs, and it adds no dependency.

* Retried with exponential backoff and full jitter (AWS's "full jitter": uniform(0, min(cap, base * 2**k))):
  429, 408, 5xx, timeouts, refused/reset connections and 200 replies that are not chat completions.
  `Retry-After` (seconds or an HTTP date) is honoured, and pauses every worker, not just the one told.
* Not retried: 401/403/404 stop the whole run (every request would fail the same way); other 4xx fail the
  one request.
* The API key only ever goes into the Authorization header. Headers are never logged, and every message
  that could reach the user (server error text, exception text) goes through `Redactor` first.
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
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from ftbench.api.errors import UsageError

READ_CHUNK = 1 << 16
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def api_key_from_env(name: str) -> str | None:
    """The API key in environment variable ``name`` (None if unset): keys come only from the environment."""
    if not _ENV_NAME.fullmatch(name):
        # not repeated back: what was given may well be the key itself, pasted in the wrong place
        raise UsageError("--api-key-env takes the NAME of an environment variable (like OPENAI_API_KEY), not the key")
    return os.environ.get(name) or None


class Redactor:
    """Removes a secret from text before it is printed, logged or written anywhere."""

    MASK = "***"

    def __init__(self, secret: str | None):
        self.secret = secret or None

    def __call__(self, text: str) -> str:
        if self.secret and isinstance(text, str) and self.secret in text:
            return text.replace(self.secret, self.MASK)
        return text


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
    max_retry_after: float = 600.0  # a Retry-After beyond this is capped (a broken header must not hang the run)

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = rng.uniform(0.0, min(self.cap, self.base * 2 ** retry))
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
        return seconds if seconds >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


CHAT = "chat/completions"
COMPLETIONS = "completions"


def completions_url(base_url: str, endpoint: str = CHAT) -> str:
    """`https://host/v1` -> `https://host/v1/chat/completions` (or `.../completions`); a base URL given with
    either endpoint at its end has it replaced by the one asked for."""
    url = base_url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--base-url {base_url}: expected an http:// or https:// URL")
    for suffix in ("/" + CHAT, "/" + COMPLETIONS):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
            break
    return f"{url}/{endpoint}"


class ChatClient:
    """Sends chat-completion (or, with ``endpoint=COMPLETIONS``, completion) requests; thread-safe (each call
    opens its own connection)."""

    def __init__(self, base_url: str, model: str | None, api_key: str | None, *, key_source: str, timeout: float,
                 policy: RetryPolicy, redact: Redactor, temperature: float | None = None,
                 max_tokens: int | None = None, seed: int | None = None, stop: threading.Event | None = None,
                 on_retry=None, endpoint: str = CHAT, user_agent: str = "ftbench-augment"):
        self.url, self.model, self.timeout, self.policy = completions_url(base_url, endpoint), model, timeout, policy
        self.endpoint = endpoint
        self.key_source, self.redact = key_source, redact
        self.temperature, self.max_tokens = temperature, max_tokens
        self.stop = stop or threading.Event()
        self.on_retry = on_retry or (lambda kind, delay: None)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         "User-Agent": user_agent}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._has_key = bool(api_key)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._not_before = 0.0  # monotonic time before which nobody sends (set by Retry-After)

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
        for retry in range(self.policy.max_retries + 1):
            self._wait_for_pause()
            try:
                completion = self._post(body)
                completion.retries = retry
                return completion
            except _Retryable as e:
                if retry == self.policy.max_retries:
                    raise RequestFailed(e.kind, f"{e} (gave up after {retry} retries)") from None
                with self._lock:
                    delay = self.policy.delay(retry, e.retry_after, self._rng)
                    if e.retry_after is not None:  # the server asked everyone to wait, not just this request
                        self._not_before = max(self._not_before, time.monotonic() + delay)
                self.on_retry(e.kind, delay)
                if self.stop.wait(delay):
                    raise Interrupted() from None
        raise AssertionError("unreachable")

    def _wait_for_pause(self) -> None:
        while True:
            with self._lock:
                wait = self._not_before - time.monotonic()
            if wait <= 0:
                return
            if self.stop.wait(wait):
                raise Interrupted()

    def _post(self, body: bytes) -> Completion:
        request = urllib.request.Request(self.url, data=body, headers=self._headers, method="POST")
        deadline = time.monotonic() + 2 * self.timeout  # each socket read may take `timeout`; the whole reply 2x
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = self._read(response, deadline)
        except urllib.error.HTTPError as e:
            self._http_error(e)
        except (TimeoutError, socket.timeout):
            raise _Retryable("timeout", f"no reply within {self.timeout:g}s") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)):
                raise _Retryable("timeout", f"no reply within {self.timeout:g}s") from None
            raise _Retryable("connection", self.redact(f"cannot connect to {self.url}: {e.reason}")) from None
        except (http.client.HTTPException, ConnectionError, OSError) as e:
            raise _Retryable("connection", self.redact(f"connection to {self.url} broke: {type(e).__name__}")) \
                from None
        return self._completion(raw)

    @staticmethod
    def _read(response, deadline: float) -> bytes:
        chunks = []
        while True:
            chunk = response.read(READ_CHUNK)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise TimeoutError()

    def _http_error(self, e: urllib.error.HTTPError):
        status = e.code
        try:
            detail = _error_message(e.read(4096))
        except (OSError, http.client.HTTPException):
            detail = ""
        detail = self.redact(detail)
        what = f"HTTP {status}" + (f": {detail}" if detail else "")
        if status == 429 or status == 408 or status >= 500:
            kind = "429" if status == 429 else "5xx" if status >= 500 else "timeout"
            raise _Retryable(kind, what, parse_retry_after(e.headers.get("Retry-After") if e.headers else None)) \
                from None
        if status in (401, 403):
            hint = (f"check the key in ${self.key_source}" if self._has_key else
                    f"no API key was sent: set ${self.key_source} (or name another variable with --api-key-env)")
            raise UsageError(f"{self.url} refused the request ({what}); {hint}")
        if status == 404:
            raise UsageError(f"{self.url}: {what}; check --base-url (most servers want it to end in /v1)"
                             + (f" and the model name {self.model}" if self.model else ""))
        raise RequestFailed(f"http-{status}", what)

    def _completion(self, raw: bytes) -> Completion:
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = (choice["message"].get("content") if self.endpoint == CHAT else choice["text"]) or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            # a proxy's HTML page or an error object with status 200: transient more often than not
            what = "a chat completion" if self.endpoint == CHAT else "a completion"
            raise _Retryable("bad-response", f"the reply is not {what}: "
                             + self.redact(_error_message(raw) or repr(raw[:80]))) from None
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Completion(text if isinstance(text, str) else "", usage, choice.get("finish_reason"))


def _error_message(raw: bytes) -> str:
    """The human part of an error body: OpenAI's {"error": {"message": ...}}, else the start of the text."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"][:300]
        if isinstance(err, str):
            return err[:300]
        if isinstance(data.get("message"), str):
            return data["message"][:300]
    return " ".join(text.split())[:200]
