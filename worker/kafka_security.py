"""TLS and SASL for the Kafka connections, from settings, for Faust and the admin client alike."""

import ssl
from typing import Any

from faust.auth import SASLCredentials, SSLCredentials

from worker.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of an `SSL` or `SASL_SSL` connection, else None."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(
        cafile=None if settings.kafka_ssl_cafile is None else str(settings.kafka_ssl_cafile)
    )
    if settings.kafka_ssl_certfile is not None:
        keyfile = None if settings.kafka_ssl_keyfile is None else str(settings.kafka_ssl_keyfile)
        context.load_cert_chain(str(settings.kafka_ssl_certfile), keyfile)
    return context


def faust_credentials(settings: Settings) -> SSLCredentials | SASLCredentials | None:
    """Faust's `broker_credentials` for the configured protocol (None for plaintext)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return SSLCredentials(ssl_context(settings))
    password = settings.kafka_sasl_password
    return SASLCredentials(
        username=settings.kafka_sasl_username,
        password=None if password is None else password.get_secret_value(),
        ssl_context=ssl_context(settings),
        mechanism=settings.kafka_sasl_mechanism,
    )


def aiokafka_security(settings: Settings) -> dict[str, Any]:
    """The keyword arguments that give an aiokafka client the same security as the worker."""
    out: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        out["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        out["sasl_mechanism"] = settings.kafka_sasl_mechanism
        out["sasl_plain_username"] = settings.kafka_sasl_username
        out["sasl_plain_password"] = None if password is None else password.get_secret_value()
    return out
