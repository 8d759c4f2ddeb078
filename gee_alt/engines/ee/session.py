"""Earth Engine session: credentials, project and endpoint (an I/O edge).

Credentials, in order:

1. a service-account JSON key: ``--key FILE`` or env ``GEE_ALT_SERVICE_ACCOUNT_KEY``;
2. user OAuth credentials stored by ``earthengine authenticate`` (``~/.config/earthengine/credentials``);
3. Application Default Credentials when ``GOOGLE_APPLICATION_CREDENTIALS`` names a file.

Project: ``--project``, else env ``EE_PROJECT``, else ``GOOGLE_CLOUD_PROJECT``, else the
service account's own project. Missing credentials are detected locally (no network) and
raise a one-line :class:`GeeAltError` pointing to ``auth/README.md``. Secrets are never printed.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from gee_alt.errors import GeeAltError

KEY_ENV = "GEE_ALT_SERVICE_ACCOUNT_KEY"
PROJECT_ENVS = ("EE_PROJECT", "GOOGLE_CLOUD_PROJECT")
AUTH_HELP = (
    "authenticate with `earthengine authenticate` (user) or a service-account key via --key FILE "
    f"or {KEY_ENV}=FILE, and set --project/EE_PROJECT; see auth/README.md"
)


@dataclass(frozen=True)
class SessionInfo:
    """What :func:`initialize` used (no secrets): ``method`` (``service_account``/``user``/``adc``),
    ``project``, ``account`` (service-account e-mail or ``""``), ``endpoint`` (``standard``/``high_volume``)."""

    method: str
    project: str | None
    account: str
    endpoint: str


def resolve_project(project: str | None, env: dict | None = None) -> str | None:
    """The Cloud project: the flag, else ``EE_PROJECT``, else ``GOOGLE_CLOUD_PROJECT``, else ``None``."""
    env = os.environ if env is None else env
    if project:
        return project
    for name in PROJECT_ENVS:
        if env.get(name):
            return env[name]
    return None


def resolve_key_path(key: str | os.PathLike | None, env: dict | None = None) -> Path | None:
    """The service-account key file: the flag, else ``GEE_ALT_SERVICE_ACCOUNT_KEY``, else ``None``."""
    env = os.environ if env is None else env
    value = key or env.get(KEY_ENV)
    return Path(value).expanduser() if value else None


def read_service_account_key(path: Path) -> dict:
    """Read and check a service-account JSON key (never prints its contents).

    A key readable or writable by other users is refused with a one-line error saying
    ``chmod 600 KEY`` (the warning that cannot be missed); the key is not used.
    """
    if not path.is_file():
        raise GeeAltError(f"service-account key not found: {path} (see auth/README.md)")
    mode = path.stat().st_mode
    if mode & (stat.S_IROTH | stat.S_IWOTH):  # like ssh: a key others can read is refused, not used
        raise GeeAltError(
            f"service-account key {path} is readable by other users; run: chmod 600 {path} "
            "(and consider rotating the key; see auth/README.md)"
        )
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise GeeAltError(f"service-account key {path} is not a readable JSON key file (see auth/README.md)") from None
    if (
        not isinstance(key, dict)
        or key.get("type") != "service_account"
        or not key.get("client_email")
        or not key.get("private_key")
    ):
        raise GeeAltError(
            f"{path} is not a service-account key (needs type, client_email, private_key; see auth/README.md)"
        )
    return key


def user_credentials_path() -> Path:
    """Where ``earthengine authenticate`` stores user credentials."""
    from ee import oauth

    return Path(oauth.get_credentials_path())


def initialize(
    project: str | None = None,
    key: str | os.PathLike | None = None,
    *,
    high_volume: bool = False,
    env: dict | None = None,
) -> SessionInfo:
    """Initialise Earth Engine; raises :class:`GeeAltError` (one line) when it cannot.

    ``high_volume`` selects ``ee.data.HIGH_VOLUME_API_BASE_URL`` (good for many parallel
    pixel requests on stored collections; computed results cache better on the standard one).
    """
    import ee

    env = os.environ if env is None else env
    project = resolve_project(project, env)
    key_path = resolve_key_path(key, env)
    url = ee.data.HIGH_VOLUME_API_BASE_URL if high_volume else None
    account = ""
    if key_path is not None:
        info = read_service_account_key(key_path)
        account = info["client_email"]
        project = project or info.get("project_id")
        try:
            credentials = ee.ServiceAccountCredentials(account, key_file=str(key_path))
        except Exception as exc:  # google-auth raises ValueError and friends for bad keys
            raise GeeAltError(
                f"service-account key {key_path} was rejected: {type(exc).__name__} (see auth/README.md)"
            ) from None
        method = "service_account"
    elif user_credentials_path().is_file():
        try:
            credentials = ee.data.get_persistent_credentials()
        except ee.EEException:
            raise GeeAltError(f"stored Earth Engine credentials are unusable; {AUTH_HELP}") from None
        method = "user"
    elif env.get("GOOGLE_APPLICATION_CREDENTIALS") and Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).is_file():
        try:
            import google.auth

            credentials, adc_project = google.auth.default(
                scopes=["https://www.googleapis.com/auth/earthengine", "https://www.googleapis.com/auth/cloud-platform"]
            )
        except Exception as exc:
            raise GeeAltError(f"application default credentials failed ({type(exc).__name__}); {AUTH_HELP}") from None
        project = project or adc_project
        method = "adc"
    else:
        raise GeeAltError(f"no Earth Engine credentials found; {AUTH_HELP}")
    if not project and method != "service_account":
        raise GeeAltError("no Cloud project for Earth Engine; pass --project P or set EE_PROJECT (see auth/README.md)")
    try:
        ee.Initialize(credentials=credentials, project=project, url=url)
    except ee.EEException as exc:
        raise GeeAltError(
            f"Earth Engine initialisation failed: {str(exc).splitlines()[0][:200]} (see auth/README.md)"
        ) from None
    except OSError as exc:
        raise GeeAltError(
            f"cannot reach Earth Engine ({type(exc).__name__}); check the network (see auth/README.md)"
        ) from None
    return SessionInfo(method, project, account, "high_volume" if high_volume else "standard")
