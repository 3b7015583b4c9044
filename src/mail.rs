//! Outgoing mail: messages are queued and sent by a background task with
//! bounded retries, so an HTTP answer never waits for (or fails because of)
//! the mail server. Transports: `log` (local use only), `file`, `smtp`.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::mpsc;

use crate::config::{MailSettings, MailTransportKind};
use crate::shutdown::Shutdown;

/// Messages waiting to be sent; beyond this, new ones are dropped (and
/// counted) rather than letting memory grow without bound.
const QUEUE: usize = 1024;

/// A message to send.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Handle for queueing mail.
#[derive(Clone)]
pub struct Mailer {
    tx: mpsc::Sender<Mail>,
    product: String,
}

enum Transport {
    Log,
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    /// Starts the sender task; it ends when every `Mailer` is dropped or
    /// `shutdown` fires.
    pub fn start(settings: &MailSettings, shutdown: Shutdown) -> anyhow::Result<Self> {
        let transport = match settings.transport {
            MailTransportKind::Log => {
                tracing::warn!(
                    "mail.transport = \"log\": messages, codes and reset links go to the log; \
                     for local use only, set mail.transport = \"smtp\" in production"
                );
                Transport::Log
            }
            MailTransportKind::File => {
                std::fs::create_dir_all(&settings.file_dir)?;
                Transport::File(AsyncFileTransport::new(&settings.file_dir))
            }
            MailTransportKind::Smtp => {
                let url = settings.smtp_url.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("mail.smtp_url is required for the smtp transport")
                })?;
                let t = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| anyhow::anyhow!("mail.smtp_url: {e}"))?
                    .timeout(Some(settings.timeout))
                    .build();
                Transport::Smtp(t)
            }
        };
        let from: Mailbox = settings.from.parse()?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let attempts = settings.max_attempts.max(1);
        tokio::spawn(run(rx, transport, from, attempts, shutdown));
        Ok(Self {
            tx,
            product: settings.product_name.clone(),
        })
    }

    /// Queues a message; never waits.
    pub fn send(&self, mail: Mail) {
        if self.tx.try_send(mail).is_err() {
            tracing::error!("mail queue full: message dropped");
            metrics::counter!("gatehouse_mail_total", "result" => "dropped").increment(1);
        }
    }

    /// Queues the activation email.
    pub fn send_activation(&self, to: &str, code: &str, ttl: Duration) {
        let p = &self.product;
        let minutes = ttl.as_secs().div_ceil(60);
        let text = format!(
            "Welcome to {p}!\n\nYour activation code is: {code}\n\n\
             Enter it where you signed up to activate your account. It expires in {minutes} minutes.\n\n\
             If you did not sign up for {p}, ignore this email.\n"
        );
        let html = format!(
            "<p>Welcome to {p}!</p><p>Your activation code is:</p>\
             <p style=\"font-size:24px;font-weight:bold;letter-spacing:4px\">{code}</p>\
             <p>Enter it where you signed up to activate your account. It expires in {minutes} minutes.</p>\
             <p>If you did not sign up for {p}, ignore this email.</p>",
            p = html_escape(p)
        );
        self.send(Mail {
            to: to.into(),
            subject: format!("Your {p} activation code: {code}"),
            text,
            html,
        });
    }

    /// Queues the "choose your password" email of a contested registration,
    /// sent on activation.
    pub fn send_choose_password(&self, to: &str, link: &str, ttl: Duration) {
        let p = &self.product;
        self.send_link(
            to,
            format!("Choose your {p} password"),
            [
                format!("Your {p} account is active."),
                "This address was registered more than once before it was activated, \
                 so no password chosen then is kept."
                    .to_owned(),
            ],
            ("Choose your password", link, ttl),
            None,
        );
    }

    /// Queues the password-reset email.
    pub fn send_reset(&self, to: &str, link: &str, ttl: Duration) {
        let p = &self.product;
        self.send_link(
            to,
            format!("Reset your {p} password"),
            [
                format!("Someone asked to reset the password of your {p} account."),
                String::new(),
            ],
            ("Choose a new password", link, ttl),
            Some("If it was not you, ignore this email: your password stays as it is."),
        );
    }

    /// A mail around one single-use link: paragraphs, the link (label,
    /// address, lifetime), and a closing line.
    fn send_link(
        &self,
        to: &str,
        subject: String,
        intro: [String; 2],
        (label, link, ttl): (&str, &str, Duration),
        outro: Option<&str>,
    ) {
        let minutes = ttl.as_secs().div_ceil(60);
        let intro: Vec<&String> = intro.iter().filter(|l| !l.is_empty()).collect();
        let mut text = String::new();
        let mut html = String::new();
        for line in &intro {
            text.push_str(&format!("{line}\n\n"));
            html.push_str(&format!("<p>{}</p>", html_escape(line)));
        }
        text.push_str(&format!(
            "{label} with this link (valid for {minutes} minutes, once):\n{link}\n"
        ));
        html.push_str(&format!(
            "<p><a href=\"{}\">{label}</a> (valid for {minutes} minutes, once).</p>",
            html_escape(link)
        ));
        if let Some(outro) = outro {
            text.push_str(&format!("\n{outro}\n"));
            html.push_str(&format!("<p>{}</p>", html_escape(outro)));
        }
        self.send(Mail {
            to: to.into(),
            subject,
            text,
            html,
        });
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Messages sent at once: a slow or failing recipient holds one of these
/// only while its SMTP conversation lasts, never while it waits to retry.
const SENDERS: usize = 4;

/// Messages waiting per recipient while an earlier one to the same address
/// is being sent or retried: each recipient gets its mail in order (a
/// resent code after the first), and no recipient waits on another's.
type Lanes = std::sync::Arc<std::sync::Mutex<HashMap<String, VecDeque<Queued>>>>;

/// A message and its place among the bounded in-flight messages.
struct Queued {
    mail: Mail,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

async fn run(
    mut rx: mpsc::Receiver<Mail>,
    transport: Transport,
    from: Mailbox,
    attempts: u32,
    shutdown: Shutdown,
) {
    let transport = std::sync::Arc::new(transport);
    let senders = std::sync::Arc::new(tokio::sync::Semaphore::new(SENDERS));
    // Messages taken off the queue but not yet done (waiting, retrying,
    // sending): bounded like the queue, so a failing server cannot make
    // them grow without end.
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(QUEUE));
    let lanes: Lanes = std::sync::Arc::default();
    loop {
        let mail = tokio::select! {
            m = rx.recv() => match m { Some(m) => m, None => break },
            () = shutdown.wait() => break,
        };
        metrics::gauge!("gatehouse_mail_queue_depth").set(rx.len() as f64);
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let recipient = mail.to.clone();
        let queued = Queued { mail, _slot: slot };
        let start_lane = {
            let Ok(mut lanes) = lanes.lock() else { break };
            match lanes.get_mut(&recipient) {
                Some(lane) => {
                    lane.push_back(queued);
                    false
                }
                None => {
                    lanes.insert(recipient.clone(), VecDeque::from([queued]));
                    true
                }
            }
        };
        if start_lane {
            let (transport, from, senders, shutdown, lanes) = (
                transport.clone(),
                from.clone(),
                senders.clone(),
                shutdown.clone(),
                lanes.clone(),
            );
            tokio::spawn(async move {
                // Drain this recipient's lane in order; the lane is removed
                // under the same lock that finds it empty.
                loop {
                    let next = {
                        let Ok(mut lanes) = lanes.lock() else { return };
                        let next = lanes.get_mut(&recipient).and_then(VecDeque::pop_front);
                        if next.is_none() {
                            lanes.remove(&recipient);
                        }
                        next
                    };
                    let Some(q) = next else { return };
                    deliver(&transport, &from, q.mail, attempts, &senders, &shutdown).await;
                }
            });
        }
    }
}

/// How one attempt ended.
enum Outcome {
    Sent,
    /// Worth another try later (connection, 4xx).
    Transient(String),
    /// Will fail the same way again (5xx: no such mailbox, refused).
    Permanent(String),
}

async fn attempt(transport: &Transport, message: &Message, mail: &Mail) -> Outcome {
    match transport {
        Transport::Log => {
            // The one place message contents are logged, by choice of the
            // operator (mail.transport = "log").
            tracing::info!(
                mail.to = %mail.to,
                subject = %mail.subject,
                "mail to {} (log transport):\n{}",
                mail.to,
                mail.text
            );
            Outcome::Sent
        }
        Transport::File(t) => match t.send(message.clone()).await {
            Ok(_) => Outcome::Sent,
            Err(e) => Outcome::Transient(e.to_string()),
        },
        Transport::Smtp(t) => match t.send(message.clone()).await {
            Ok(_) => Outcome::Sent,
            Err(e) if e.is_permanent() => Outcome::Permanent(e.to_string()),
            Err(e) => Outcome::Transient(e.to_string()),
        },
    }
}

async fn deliver(
    transport: &Transport,
    from: &Mailbox,
    mail: Mail,
    attempts: u32,
    senders: &tokio::sync::Semaphore,
    shutdown: &Shutdown,
) {
    let to: Mailbox = match mail.to.parse() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, mail.to = %mail.to, "unusable recipient address; message dropped");
            metrics::counter!("gatehouse_mail_total", "result" => "failed").increment(1);
            return;
        }
    };
    let message = match Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&mail.subject)
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        )) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "could not build a message; dropped");
            metrics::counter!("gatehouse_mail_total", "result" => "failed").increment(1);
            return;
        }
    };
    let mut delay = Duration::from_millis(500);
    for n in 1..=attempts {
        let outcome = {
            let Ok(_sender) = senders.acquire().await else {
                return;
            };
            attempt(transport, &message, &mail).await
        };
        match outcome {
            Outcome::Sent => {
                metrics::counter!("gatehouse_mail_total", "result" => "sent").increment(1);
                return;
            }
            Outcome::Permanent(e) => {
                tracing::error!(mail.to = %mail.to, error = %e, "the mail server refused the message for good; not retried");
                metrics::counter!("gatehouse_mail_total", "result" => "failed").increment(1);
                return;
            }
            Outcome::Transient(e) if n < attempts => {
                tracing::warn!(attempt = n, mail.to = %mail.to, error = %e, "sending mail failed; retrying");
                metrics::counter!("gatehouse_mail_retries_total").increment(1);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.wait() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Outcome::Transient(e) => {
                tracing::error!(attempts, mail.to = %mail.to, error = %e, "sending mail failed; message dropped (the user can ask for another)");
                metrics::counter!("gatehouse_mail_total", "result" => "failed").increment(1);
            }
        }
    }
}
