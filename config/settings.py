"""Candor's one settings module: everything comes from the environment, with embedded defaults.

Every variable is listed with its default in `.env.example` and in the README.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    dev_secret,
    envbool,
    envchoice,
    envfloat,
    envint,
    envlist,
    envsecret,
    envstr,
    private_dir,
    private_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# Private: the database, keys, secret key and uploaded photos live here (mode 0700).
VAR_DIR = private_dir(Path(envstr("CANDOR_VAR_DIR") or BASE_DIR / "var").resolve())

# Off unless asked for: a debug page shows settings and code to whoever triggers an error.
DEBUG = envbool("DEBUG", False)

# Without one configured, a single-machine install keeps a generated key under var/ (0600).
# Several web hosts behind one name must share one: set SECRET_KEY or SECRET_KEY_FILE.
SECRET_KEY = envsecret("SECRET_KEY") or dev_secret(VAR_DIR / "secret_key")

SITE_URL = envstr("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
SITE_NAME = envstr("SITE_NAME", "Candor")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
# Only behind a reverse proxy that sets it: otherwise clients could spoof their address.
TRUST_X_FORWARDED_FOR = envbool("TRUST_X_FORWARDED_FOR", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_rq",
    "creator.accounts",
    "creator.jobs",
    "creator.notices",
    "creator.likeness",
    "creator.studio",
    "creator.api",
    "gallery",
    "ninja",  # the API docs' own static files (no CDN)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.middleware.SiteUrlHostMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.context_processors.site",
                "creator.notices.context_processors.unread",
            ],
        },
    },
]

# SQLite under var/ by default; PostgreSQL (or anything dj-database-url reads) via DATABASE_URL.
DATABASE_URL = envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'candor.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL cannot be read: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so that a worker process started by a test sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    # SQLite makes its file with the process umask (often world-readable); start it private.
    private_file(Path(DATABASES["default"]["NAME"]))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["creator.accounts.auth.HandleOrEmailBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "home"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Brute-force protection. Failed logins per 15 minutes, per client address and per account;
# sign-up attempts and password-reset requests per hour, per client address.
LOGIN_RATE_LIMIT = envint("LOGIN_RATE_LIMIT", 10, minimum=1)
SIGNUP_RATE_LIMIT = envint("SIGNUP_RATE_LIMIT", 20, minimum=1)
PASSWORD_RESET_RATE_LIMIT = envint("PASSWORD_RESET_RATE_LIMIT", 5, minimum=1)

# The rate-limit counters live in the database so they hold across web processes and do not
# depend on Redis being up.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "candor_cache",
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# Hashed, compressed file names for long caching; needs `collectstatic` first (`up` runs it).
STATIC_MANIFEST = envbool("STATIC_MANIFEST", False)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    # Private by design: nothing in MEDIA_ROOT has a public URL; files are served by views
    # that check ownership.
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(Path(envstr("MEDIA_ROOT") or VAR_DIR / "media"))},
    },
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        ),
    },
}
# Without collected files (tests, `runserver`), whitenoise serves them from the app folders.
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
MEDIA_ROOT = STORAGES["default"]["OPTIONS"]["location"]
FILE_UPLOAD_PERMISSIONS = 0o640

# Email: printed to the console unless an SMTP host is configured.
EMAIL_HOST = envstr("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = envint("EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = envstr("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = envsecret("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", True)
    EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
    # A slow mail server must not hold a page open: notices and links are sent in the request.
    EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10, minimum=1)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "Candor <candor@localhost>")

HTTPS = SITE_URL.startswith("https://")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Served over https: browsers are told to stay on https, and plain http is redirected there.
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", HTTPS)
# Behind a reverse proxy that ends TLS: trust its X-Forwarded-Proto, or the redirect loops.
if envbool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Every page: scripts and styles only from this site's files (no inline script), images also
# from blob:/data: (the selfie preview), nothing may frame the site.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# Debug pages (DEBUG=true only) hide every setting that can carry a secret, URLs included.
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.security.SecretsHiddenFilter"

# Jobs. Without REDIS_URL, `candor up` starts a private redis-server on this unix socket.
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = envstr("REDIS_URL") or f"unix://{EMBEDDED_REDIS_SOCKET}?db=0"
REDIS_EMBEDDED = not envstr("REDIS_URL")
JOB_QUEUES = {
    # queue name -> default timeout in seconds
    "training": envint("TRAINING_JOB_TIMEOUT", 6 * 3600, minimum=60),
    "generation": envint("GENERATION_JOB_TIMEOUT", 1800, minimum=30),
    "default": envint("DEFAULT_JOB_TIMEOUT", 600, minimum=10),
}
RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": timeout, "SOCKET_TIMEOUT": 5}
    for name, timeout in JOB_QUEUES.items()
}
# A worker proves it is alive by refreshing a key this often; a job whose worker key has
# expired (three intervals) is failed by the reconciler.
WORKER_HEARTBEAT_SECONDS = envfloat("WORKER_HEARTBEAT_SECONDS", 5.0, minimum=0.1)
# Progress is written to the database at most this often.
JOB_PROGRESS_INTERVAL = envfloat("JOB_PROGRESS_INTERVAL", 1.0, minimum=0.0)

# Reference photos: limits on what an upload may be, and the thresholds of the photo checks.
PHOTO_MAX_BYTES = envint("PHOTO_MAX_BYTES", 25_000_000, minimum=1)
PHOTO_MAX_FILES_PER_UPLOAD = envint("PHOTO_MAX_FILES_PER_UPLOAD", 20, minimum=1)
PHOTO_MAX_PER_SUBJECT = envint("PHOTO_MAX_PER_SUBJECT", 40, minimum=3)
PHOTO_MAX_PIXELS = envint("PHOTO_MAX_PIXELS", 50_000_000, minimum=1)
PHOTO_MIN_SIDE = envint("PHOTO_MIN_SIDE", 256, minimum=16)
PHOTO_STORE_MAX_SIDE = envint("PHOTO_STORE_MAX_SIDE", 2048, minimum=256)
PHOTO_MIN_FACE_PX = envint("PHOTO_MIN_FACE_PX", 64, minimum=16)
PHOTO_MIN_SHARPNESS = envfloat("PHOTO_MIN_SHARPNESS", 4.0, minimum=0.0)
PHOTO_DUPLICATE_BITS = envint("PHOTO_DUPLICATE_BITS", 6, minimum=0)
FACE_MATCH_THRESHOLD = envfloat("FACE_MATCH_THRESHOLD", 0.6, minimum=0.0)
PHOTOS_REQUIRED = 3
PHOTOS_RECOMMENDED = (8, 20)
CONSENT_LINK_HOURS = envint("CONSENT_LINK_HOURS", 72, minimum=1)
# Consent needs the live camera challenge (head turns in a random order, checked on the server).
# Off: a picture file is accepted too, recorded as the weaker "upload" method.
CONSENT_REQUIRE_LIVENESS = envbool("CONSENT_REQUIRE_LIVENESS", True)
# From issuing a challenge to receiving its frames: the moves take ~6 s, the upload a few more.
CONSENT_CHALLENGE_SECONDS = envint("CONSENT_CHALLENGE_SECONDS", 90, minimum=10)
CONSENT_FRAME_MAX_BYTES = envint("CONSENT_FRAME_MAX_BYTES", 2_000_000, minimum=10_000)
# Django's own cap answers with a bare 400; ours (PHOTO_MAX_FILES_PER_UPLOAD) says why.
DATA_UPLOAD_MAX_NUMBER_FILES = 200

# Personal models. The base model: "builtin:tiny" (made offline, not a likeness; also
# "builtin:tiny-sdxl" and "builtin:tiny-flux"), a local diffusers folder, a single-file
# .safetensors checkpoint or a hub id, of the SD 1.x/2.x, SDXL or FLUX.1 family.
CANDOR_BASE_MODEL = envstr("CANDOR_BASE_MODEL", "builtin:tiny")
# Its public name on posts and in signed credentials (default: the model's own folder or file
# name, or the hub id; never a path on this server).
CANDOR_BASE_MODEL_LABEL = envstr("CANDOR_BASE_MODEL_LABEL")
MODEL_CACHE_DIR = Path(envstr("MODEL_CACHE_DIR") or VAR_DIR / "models")
MIXED_PRECISION = envchoice("MIXED_PRECISION", "auto", ("auto", "no", "fp16", "bf16"))
# 0 (steps, resolution, rank, learning rate, generation steps) or -1 (guidance): the base model
# family's default (creator/engine/families.py says where each comes from).
TRAIN_STEPS = envint("TRAIN_STEPS", 0, minimum=0)
TRAIN_RESOLUTION = envint("TRAIN_RESOLUTION", 0, minimum=0)  # 0: the base model's native size
TRAIN_RANK = envint("TRAIN_RANK", 0, minimum=0)
TRAIN_LEARNING_RATE = envfloat("TRAIN_LEARNING_RATE", 0.0, minimum=0.0)
TRAIN_CHECKPOINT_EVERY = envint("TRAIN_CHECKPOINT_EVERY", 0, minimum=0)  # 0: five per run
# Likeness-aware training: weigh the loss inside each photo's face box by 1 + this (0: off).
TRAIN_FACE_WEIGHT = envfloat("TRAIN_FACE_WEIGHT", 0.0, minimum=0.0)
# Speed and memory on a GPU: README "Memory and speed" says what each costs.
TRAIN_OPTIMIZER = envchoice("TRAIN_OPTIMIZER", "adamw", ("adamw", "adamw8bit"))  # 8bit: CUDA
TRAIN_GRADIENT_CHECKPOINTING = envchoice(
    "TRAIN_GRADIENT_CHECKPOINTING", "auto", ("auto", "on", "off")
)
TRAIN_COMPILE = envbool("TRAIN_COMPILE", False)  # torch.compile the denoiser while training
QUANTIZE = envchoice("QUANTIZE", "none", ("none", "nf4", "int8"))  # bitsandbytes, torchao: CUDA
GENERATION_STEPS = envint("GENERATION_STEPS", 0, minimum=0)
GENERATION_GUIDANCE = envfloat("GENERATION_GUIDANCE", -1.0, minimum=-1.0)
GENERATION_COMPILE = envbool("GENERATION_COMPILE", False)  # compiled denoiser, hot-swapped LoRAs
LORA_CACHE_SIZE = envint("LORA_CACHE_SIZE", 4, minimum=1)
# How long the API keeps the answer to a POST sent with an Idempotency-Key.
API_IDEMPOTENCY_HOURS = envint("API_IDEMPOTENCY_HOURS", 24, minimum=1)

# Content Credentials. Without a chain and key, an instance CA and signing certificate are made
# under C2PA_KEYS_DIR on first use.
C2PA_KEYS_DIR = Path(envstr("C2PA_KEYS_DIR") or VAR_DIR / "keys")
C2PA_CERT_CHAIN_FILE = envstr("C2PA_CERT_CHAIN_FILE")
C2PA_PRIVATE_KEY_FILE = envstr("C2PA_PRIVATE_KEY_FILE")
C2PA_TRUST_ANCHORS_FILE = envstr("C2PA_TRUST_ANCHORS_FILE")
C2PA_TSA_URL = envstr("C2PA_TSA_URL")
# The visible label a post kit burns into files for platforms that strip metadata, unless the
# creator picks another (gallery/labels.py LABEL_STYLES; a test keeps the two lists equal).
LABEL_STYLE = envchoice("LABEL_STYLE", "badge", ("badge", "eu", "text"))
VERIFY_RATE_LIMIT = envint("VERIFY_RATE_LIMIT", 30, minimum=1)  # per client address per minute
# Decoding time and memory follow the pixels an image declares (a JPEG's entropy decoding runs
# over every block even when fewer are kept): at 16 MP a verification takes about half a second
# and at most ~230 MB (bench/verify.py). No Candor image is this large; a larger image's manifest
# is still read, only the watermark and similarity search is refused.
VERIFY_DECODE_MAX_PIXELS = envint("VERIFY_DECODE_MAX_PIXELS", 16_000_000, minimum=1_000_000)
# Verifications one web process runs at once; more are answered 503 with Retry-After.
VERIFY_CONCURRENCY = envint("VERIFY_CONCURRENCY", 2, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"rq.worker": {"level": "INFO"}},
}

RQ = {"WORKER_CLASS": "creator.jobs.worker.CandorWorker", "COMMIT_MODE": "on_db_commit"}

# Rate limits behind a proxy
# How many reverse proxies in front of Candor append the address they saw to X-Forwarded-For.
# Limits key on the entry the outermost of them appended (the N-th from the right), which a client
# cannot forge; 0 takes the connecting address. TRUST_X_FORWARDED_FOR=true, the older switch, now
# means one proxy (it used to take the leftmost entry, which the client writes).
TRUSTED_PROXY_HOPS = envint("TRUSTED_PROXY_HOPS", 1 if TRUST_X_FORWARDED_FOR else 0, minimum=0)
if TRUST_X_FORWARDED_FOR and not TRUSTED_PROXY_HOPS:
    raise ImproperlyConfigured(
        "TRUST_X_FORWARDED_FOR=true needs TRUSTED_PROXY_HOPS of at least 1; set only one of them."
    )
# A browser that logged in to an account is remembered this long (a signed cookie): guesses at
# the account from elsewhere then cannot lock that browser out.
LOGIN_KNOWN_DEVICE_DAYS = envint("LOGIN_KNOWN_DEVICE_DAYS", 90, minimum=1)

# API tokens
# Requests per sliding minute per personal API token; more are answered 429 with Retry-After.
API_RATE_LIMIT = envint("API_RATE_LIMIT", 120, minimum=1)

# Webhooks (creator/notices/webhooks.py; README "Webhooks")
# Private, loopback and link-local receivers are refused unless this is on (self-hosted setups).
WEBHOOK_ALLOW_PRIVATE = envbool("WEBHOOK_ALLOW_PRIVATE", False)
WEBHOOK_TIMEOUT = envfloat("WEBHOOK_TIMEOUT", 5.0, minimum=0.1)  # seconds to connect, and to answer
# Seconds to wait before each attempt, the first included (~27 h in all); same webhook-id each time.
_WEBHOOK_RETRIES = ["0", "5", "300", "1800", "7200", "18000", "36000", "36000"]
try:
    WEBHOOK_RETRY_DELAYS = [float(s) for s in envlist("WEBHOOK_RETRY_DELAYS", _WEBHOOK_RETRIES)]
except ValueError:
    raise ImproperlyConfigured("WEBHOOK_RETRY_DELAYS: seconds, separated by commas.") from None
if not WEBHOOK_RETRY_DELAYS or min(WEBHOOK_RETRY_DELAYS) < 0:
    raise ImproperlyConfigured("WEBHOOK_RETRY_DELAYS: seconds (0 or more), separated by commas.")
# An endpoint whose deliveries were given up this many times in a row is turned off (with a notice).
WEBHOOK_DISABLE_AFTER = envint("WEBHOOK_DISABLE_AFTER", 5, minimum=1)
