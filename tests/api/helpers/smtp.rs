//! An SMTP server inside the test that keeps the mail it receives.

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Messages received by an SMTP server running inside the test.
#[derive(Clone)]
pub struct MailSink {
    /// Port it listens on.
    pub port: u16,
    messages: Arc<Mutex<Vec<Vec<u8>>>>,
}

#[derive(Clone)]
struct SinkHandler {
    current: Vec<u8>,
    messages: Arc<Mutex<Vec<Vec<u8>>>>,
    /// A recipient this server refuses for good (550), and how often it did.
    refuse: Option<(String, Arc<std::sync::atomic::AtomicUsize>)>,
}

impl mailin::Handler for SinkHandler {
    fn rcpt(&mut self, to: &str) -> mailin::Response {
        match &self.refuse {
            Some((bad, count)) if to.contains(bad.as_str()) => {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                mailin::response::NO_MAILBOX
            }
            _ => mailin::response::OK,
        }
    }
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> mailin::Response {
        self.current.clear();
        mailin::response::OK
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> mailin::Response {
        self.messages
            .lock()
            .expect("lock")
            .push(std::mem::take(&mut self.current));
        mailin::response::OK
    }
}

/// One SMTP conversation, driven by the `mailin` protocol state machine.
fn converse(stream: std::net::TcpStream, handler: SinkHandler) -> std::io::Result<()> {
    use std::io::{BufRead as _, BufReader, Write as _};
    let ip = stream.peer_addr()?.ip();
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut session = mailin::SessionBuilder::new("sink.test").build(ip, handler);
    session.greeting().write_to(&mut writer)?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let res = session.process(&line);
        match res.action {
            mailin::Action::Reply => res.write_to(&mut writer)?,
            mailin::Action::Close => {
                res.write_to(&mut writer)?;
                return Ok(());
            }
            mailin::Action::UpgradeTls => return Ok(()),
            mailin::Action::NoReply => {}
        }
        writer.flush()?;
    }
}

impl MailSink {
    /// Starts an SMTP server on a free port (it runs until the process ends).
    pub fn start() -> Self {
        let listener = StdListener::bind("127.0.0.1:0").expect("bind smtp");
        Self::serve(listener)
    }

    /// A free port with nothing listening on it (yet).
    pub fn unused_port() -> u16 {
        StdListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port()
    }

    /// Starts an SMTP server on `port`.
    pub fn start_on(port: u16) -> Self {
        Self::serve(StdListener::bind(("127.0.0.1", port)).expect("bind smtp port"))
    }

    /// An SMTP server that answers 550 for `recipient` (and counts how
    /// often it was asked), and takes everything else.
    pub fn refusing(recipient: &str) -> (Self, Arc<std::sync::atomic::AtomicUsize>) {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let listener = StdListener::bind("127.0.0.1:0").expect("bind smtp");
        let sink = Self::serve_with(listener, Some((recipient.to_owned(), count.clone())));
        (sink, count)
    }

    fn serve(listener: StdListener) -> Self {
        Self::serve_with(listener, None)
    }

    fn serve_with(
        listener: StdListener,
        refuse: Option<(String, Arc<std::sync::atomic::AtomicUsize>)>,
    ) -> Self {
        let port = listener.local_addr().expect("addr").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let handler = SinkHandler {
            current: Vec::new(),
            messages: messages.clone(),
            refuse,
        };
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let h = handler.clone();
                std::thread::spawn(move || converse(stream, h));
            }
        });
        Self { port, messages }
    }

    /// Waits (up to 10 s) for a message to `to` whose text contains `needle`;
    /// returns its decoded plain-text body and subject.
    pub async fn wait_for(&self, to: &str, needle: &str) -> (String, String) {
        for _ in 0..200 {
            let found = self
                .messages
                .lock()
                .expect("lock")
                .iter()
                .rev()
                .find_map(|raw| {
                    let parsed = mailparse::parse_mail(raw).ok()?;
                    let headers = &parsed.headers;
                    use mailparse::MailHeaderMap as _;
                    let rcpt = headers.get_first_value("To")?;
                    if !rcpt.contains(to) {
                        return None;
                    }
                    let subject = headers.get_first_value("Subject").unwrap_or_default();
                    let text = text_part(&parsed)?;
                    (text.contains(needle) || subject.contains(needle)).then_some((text, subject))
                });
            if let Some(f) = found {
                return f;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no mail to {to} containing {needle:?} arrived");
    }

    /// Waits (up to 10 s) until `n` messages arrived.
    pub async fn wait_count(&self, n: usize) {
        for _ in 0..200 {
            if self.messages.lock().expect("lock").len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fewer than {n} messages arrived");
    }
}

fn text_part(m: &mailparse::ParsedMail<'_>) -> Option<String> {
    if m.ctype.mimetype == "text/plain" {
        return m.get_body().ok();
    }
    m.subparts.iter().find_map(text_part)
}

/// The 6-digit code in an activation mail body.
pub fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a 6-digit code")
        .to_owned()
}
