//! Mail through SMTP with `lettre`: plain, STARTTLS or TLS from the first byte, with
//! credentials when the destination has a user name (the password comes revealed from
//! the destination's secret). It never puts the password into an error.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use super::send::{DELIVERY_TIMEOUT, SendError};
use crate::spec::{Destination, SmtpTls};

/// Send `(subject, body)` to an email destination.
pub(crate) async fn send(
    destination: &Destination,
    password: Option<SecretString>,
    (subject, body): (String, String),
) -> Result<(), SendError> {
    let Destination::Email { host, port, tls, from, to, username, .. } = destination else {
        return Err(SendError::Permanent("not an email destination".into()));
    };
    let at = format!("smtp://{host}:{port}");
    let mailbox = |text: &str| {
        text.parse::<Mailbox>().map_err(|e| SendError::Permanent(format!("{at}: bad address `{text}`: {e}")))
    };
    let mut message = Message::builder().from(mailbox(from)?).subject(subject).header(ContentType::TEXT_PLAIN);
    for recipient in to {
        message = message.to(mailbox(recipient)?);
    }
    let message = message.body(body).map_err(|e| SendError::Permanent(format!("{at}: {e}")))?;
    let parameters = || TlsParameters::new(host.clone()).map_err(|e| SendError::Permanent(format!("{at}: TLS: {e}")));
    let tls = match tls {
        SmtpTls::Off => Tls::None,
        SmtpTls::Starttls => Tls::Required(parameters()?),
        SmtpTls::Tls => Tls::Wrapper(parameters()?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
        .port(*port)
        .tls(tls)
        .timeout(Some(DELIVERY_TIMEOUT));
    if let Some(user) = username {
        let password = password.as_ref().map(|p| p.expose_secret().to_string()).unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    match builder.build().send(message).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("{at}: {e}"))),
        Err(e) => Err(SendError::Retry(format!("{at}: {e}"))),
    }
}
