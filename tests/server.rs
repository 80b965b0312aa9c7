//! `unmask serve` end to end on the bundled demo model, on a free loopback port: OpenAI's own
//! Python client (tests/server_client.py), curl for what a client library hides (infill, the
//! step stream, bad requests, the API key, oversize bodies), and raw sockets for the queue: a
//! full queue answers 429, concurrent clients all get their own answers, and a client that
//! disconnects mid-stream cancels its generation while the next request is served.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        Server::start_with(args, &[])
    }

    fn start_with(args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_unmask"))
            .args(["serve", "--port", "0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("no address printed: {line:?}\n{}", std::fs::read_to_string(&log).unwrap_or_default()))
            .to_string();
        Server { child, url, log, _dir: dir }
    }

    fn addr(&self) -> &str {
        self.url.strip_prefix("http://").unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `curl` with `args` on `path`: (HTTP status, body).
    fn curl(&self, path: &str, args: &[&str]) -> (u16, String) {
        let o = Command::new("curl").args(["-sS", "-N", "-w", "\n%{http_code}"]).args(args).arg(format!("{}{path}", self.url)).output().expect("curl");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    fn post(&self, path: &str, json: &str) -> (u16, serde_json::Value) {
        let (code, body) = self.curl(path, &["-H", "content-type: application/json", "-d", json]);
        (code, serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")))
    }

    fn health(&self) -> serde_json::Value {
        serde_json::from_str(&self.curl("/health", &[]).1).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn error_of(v: &serde_json::Value) -> (&str, &str) {
    let e = &v["error"];
    (e["type"].as_str().unwrap_or_else(|| panic!("no OpenAI error: {v}")), e["message"].as_str().unwrap())
}

/// OpenAI's Python client from the environment `./build.sh deps` makes (target/pyenv).
#[test]
fn openai_python_client() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("UNMASK_PYTHON").map(PathBuf::from).unwrap_or_else(|_| root.join("target/pyenv/bin/python"));
    assert!(python.exists(), "{} is missing: run ./build.sh deps, which installs OpenAI's Python client there (or set UNMASK_PYTHON)", python.display());
    let s = Server::start(&[]);
    let o = Command::new(&python).arg(root.join("tests/server_client.py")).arg(&s.url).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}\n{}\nserver log:\n{}", String::from_utf8_lossy(&o.stderr), s.log());
    assert!(out.contains("all client checks passed"), "{out}");
}

#[test]
fn curl_infill_steps_and_bad_requests() {
    let s = Server::start(&["--max-body", "4000"]);
    assert_eq!(s.health()["status"], "ok");

    // Infill: every span filled, the literal text kept, no markers left.
    let (code, v) =
        s.post("/v1/infill", r#"{"text": "Mia has 12 apples and buys 30 more. Now she has <mask:3> apples. The answer is [MASK].", "span_length": 2}"#);
    assert_eq!(code, 200, "{v}");
    let text = v["text"].as_str().unwrap();
    let fills: Vec<&str> = v["fills"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(fills.len(), 2, "{v}");
    assert!(
        text.starts_with("Mia has 12 apples and buys 30 more. Now she has") && text.ends_with('.') && !text.contains("mask") && !text.contains("MASK"),
        "{text}"
    );
    assert!(fills.iter().all(|f| text.contains(f)), "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 5, "{v}");

    // The step stream: every answer position committed once, in `event: step` records, and
    // the text chunks still arrive.
    let (code, body) = s.curl(
        "/v1/chat/completions",
        &["-d", r#"{"messages": [{"role": "user", "content": "Tom has 5 pens and gets 7 more. How many pens does he have?"}], "max_tokens": 32, "steps": 16, "stream": true, "denoising": true, "early_stop": false}"#],
    );
    assert_eq!(code, 200, "{body}");
    let mut positions = Vec::new();
    let mut last_event = "";
    let mut steps = 0;
    for line in body.lines() {
        if let Some(e) = line.strip_prefix("event: ") {
            last_event = e;
        } else if let Some(d) = line.strip_prefix("data: ") {
            if last_event == "step" {
                let v: serde_json::Value = serde_json::from_str(d).unwrap();
                steps += 1;
                assert_eq!(v["step"], steps, "{d}");
                for c in v["committed"].as_array().unwrap() {
                    assert!(c["confidence"].as_f64().unwrap() >= 0.0 && c["text"].is_string(), "{c}");
                    positions.push(c["position"].as_i64().unwrap());
                }
            }
            last_event = "";
        }
    }
    positions.sort();
    assert_eq!(steps, 16, "{body}");
    assert_eq!(positions, (0..32).collect::<Vec<i64>>(), "each position committed once");
    assert!(body.contains("chat.completion.chunk") && body.trim_end().ends_with("data: [DONE]"), "{body}");

    // Bad requests: OpenAI's error JSON with a status that says what is wrong.
    for (body, code, needle) in [
        ("{not json", 400, "not valid JSON"),
        (r#"{"messages": "hi"}"#, 400, "not valid JSON"),
        (r#"{"messages": [{"role": "robot", "content": "hi"}]}"#, 400, "robot"),
        (r#"{"messages": [{"role": "user", "content": "hi"}], "n": 3}"#, 400, "`n` must be 1"),
        (r#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}"#, 400, "max_tokens"),
        (r#"{"messages": [{"role": "user", "content": "hi"}], "remasking": "sideways"}"#, 400, "sideways"),
        (r#"{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}"#, 400, "text only"),
        (r#"{"messages": [{"role": "user", "content": "hi"}], "stop": [1, 2]}"#, 400, "stop"),
    ] {
        let (c, v) = s.post("/v1/chat/completions", body);
        assert_eq!(c, code, "{body} → {v}");
        let (kind, message) = error_of(&v);
        assert!(kind == "invalid_request_error" && message.contains(needle), "{body} → {v}");
    }
    let (c, v) = s.post("/v1/completions", r#"{"prompt": ""}"#);
    assert!(c == 400 && error_of(&v).1.contains("empty"), "{v}");
    let (c, v) = s.post("/v1/infill", r#"{"text": "no spans here"}"#);
    assert!(c == 400 && error_of(&v).1.contains("MASK"), "{v}");
    let big = format!(r#"{{"prompt": "{}"}}"#, "a".repeat(5000));
    let (c, v) = s.post("/v1/completions", &big);
    assert!(c == 413 && error_of(&v).1.contains("--max-body"), "{v}");
    let (c, v) = s.post("/v1/nothing", "{}");
    assert!(c == 404 && error_of(&v).1.contains("/v1/chat/completions"), "{v}");
    let (c, body) = s.curl("/v1/chat/completions", &[]);
    assert!(c == 405 && body.contains("POST"), "{c} {body}");
    // The server is still there.
    assert_eq!(s.health()["running"], 0);
}

#[test]
fn api_key_is_required_when_set() {
    let s = Server::start(&["--api-key", "sesame"]);
    let (c, v) = s.post("/v1/models", "");
    assert_eq!(c, 405, "{v}");
    let (c, body) = s.curl("/v1/models", &[]);
    assert!(c == 401 && body.contains("invalid_api_key"), "{c} {body}");
    let (c, body) = s.curl("/v1/models", &["-H", "Authorization: Bearer wrong"]);
    assert_eq!(c, 401, "{body}");
    let (c, body) = s.curl("/v1/models", &["-H", "Authorization: Bearer sesame"]);
    assert!(c == 200 && body.contains("demo"), "{c} {body}");
    assert_eq!(s.curl("/health", &[]).0, 200, "health needs no key");
}

/// Sends a streamed request on a raw socket and returns it once the first text chunk arrived.
fn stream_until_first_text(addr: &str, body: &str) -> TcpStream {
    let mut t = TcpStream::connect(addr).unwrap();
    write!(t, "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    while !String::from_utf8_lossy(&seen).contains("data: {") {
        let n = t.read(&mut buf).unwrap();
        assert!(n > 0 && start.elapsed() < Duration::from_secs(120), "stream ended early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    t
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn queue_concurrency_and_disconnects() {
    let s = Server::start(&["--queue", "2"]);
    let ask = |q: &str, seed: u32| format!(r#"{{"messages": [{{"role": "user", "content": "{q}"}}], "max_tokens": 24, "temperature": 0.8, "seed": {seed}}}"#);
    let questions = ["Tom has 5 pens and gets 7 more. How many pens does he have?", "What is 8 + 9?", "Reverse the word cat."];

    // Three clients at once: each queued, each answered, and each answer is the one the same
    // request gets alone (no mixing of sessions). A client that arrives before the GPU thread
    // has taken the first request off the queue finds it full (two waiting) and retries, as the
    // 429 says to (CI's loaded machine schedules that thread late now and then).
    let (server, ask) = (&s, &ask);
    let post = move |q: &str, seed: u32| {
        let start = Instant::now();
        loop {
            let (c, v) = server.post("/v1/chat/completions", &ask(q, seed));
            if c != 429 || start.elapsed() > Duration::from_secs(120) {
                return (c, v);
            }
            assert_eq!(v["error"]["code"], "server_busy", "{v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let together: Vec<serde_json::Value> = std::thread::scope(|sc| {
        let hs: Vec<_> = questions.iter().zip(1..).map(|(q, seed)| sc.spawn(move || post(q, seed))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).map(|(c, v)| if c == 200 { v } else { panic!("{c} {v}") }).collect()
    });
    for ((q, seed), v) in questions.iter().zip(1..).zip(&together) {
        let (c, alone) = s.post("/v1/chat/completions", &ask(q, seed));
        assert_eq!(c, 200);
        assert_eq!(alone["choices"][0]["message"]["content"], v["choices"][0]["message"]["content"], "{q}");
    }

    // A long streamed generation runs; two more wait; the next is refused with 429.
    let long = r#"{"messages": [{"role": "user", "content": "Count."}], "max_tokens": 224, "block_length": 8, "steps": 224, "cache": "none", "early_stop": false, "stream": true}"#;
    let a = stream_until_first_text(s.addr(), long);
    let waiting: Vec<_> = (0..2)
        .map(|i| {
            let (url, body) = (s.url.clone(), ask(questions[i], 7));
            std::thread::spawn(move || {
                let o = Command::new("curl").args(["-sS", "-w", "\n%{http_code}", "-d", &body]).arg(format!("{url}/v1/chat/completions")).output().unwrap();
                String::from_utf8_lossy(&o.stdout).into_owned()
            })
        })
        .collect();
    wait_for("two queued requests", || s.health()["queued"] == 2);
    let (c, v) = s.post("/v1/chat/completions", &ask("What is 1 + 1?", 1));
    assert_eq!(c, 429, "{v}");
    assert_eq!(v["error"]["code"], "server_busy");

    // The streaming client goes away: its generation stops, and the queued requests are served.
    drop(a);
    for w in waiting {
        let out = w.join().unwrap();
        assert!(out.ends_with("\n200") && out.contains("chat.completion"), "{out}");
    }
    wait_for("the cancellation in the log", || s.log().contains("cancelled"));
    let log = s.log();
    let steps: usize = log.split("cancelled after ").nth(1).and_then(|t| t.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(steps < 224, "the abandoned generation ran to the end:\n{log}");
    let h = s.health();
    assert!(h["running"] == 0 && h["queued"] == 0, "{h}");
    let (c, _) = s.post("/v1/chat/completions", &ask("What is 1 + 1?", 1));
    assert_eq!(c, 200);

    // A client of a non-streamed request that goes away cancels it too.
    let body = long.replace(r#", "stream": true"#, "");
    let mut t = TcpStream::connect(s.addr()).unwrap();
    write!(t, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    wait_for("the request to run", || s.health()["running"] == 1);
    drop(t);
    wait_for("the second cancellation", || s.log().matches("cancelled").count() == 2);
    wait_for("the worker to be free", || s.health()["running"] == 0);
}

/// DiffusionGemma (the reference fixture): the same answer as `unmask generate` with the same
/// seed, streamed one finished canvas at a time, and masked-diffusion settings refused.
#[test]
fn diffusion_gemma_is_served() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/families/diffusion_gemma");
    let s = Server::start(&["--model", dir.to_str().unwrap()]);
    let cli = Command::new(env!("CARGO_BIN_EXE_unmask"))
        .args(["generate", "--model", dir.to_str().unwrap(), "--prompt", "Hello there", "--chat", "--gen-length", "32", "--seed", "2", "--json"])
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let cli: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    let ask = r#"{"messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 32, "seed": 2"#;
    let (c, v) = s.post("/v1/chat/completions", &format!("{ask}}}"));
    assert_eq!(c, 200, "{v}");
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    let text = cli["text"].as_str().unwrap();
    assert!(!content.is_empty() && text.starts_with(content), "server {content:?} vs CLI {text:?}");
    if cli["stop"] == "length" {
        assert_eq!(content, text);
    }
    // Streamed: one piece per finished canvas (16 tokens each), adding up to the same text,
    // and with `denoising` every step's record.
    let (c, body) = s.curl("/v1/chat/completions", &["-d", &format!(r#"{ask}, "stream": true, "denoising": true}}"#)]);
    assert_eq!(c, 200, "{body}");
    let mut pieces = Vec::new();
    let mut step_records = 0;
    let mut last_event = "";
    for line in body.lines() {
        if let Some(e) = line.strip_prefix("event: ") {
            last_event = e;
        } else if let Some(d) = line.strip_prefix("data: {") {
            let v: serde_json::Value = serde_json::from_str(&format!("{{{d}")).unwrap();
            if last_event == "step" {
                step_records += 1;
                assert!(v["canvas"].is_u64() && v["accepted_cells"].as_array().unwrap().len() == 16, "{v}");
            } else if let Some(t) = v["choices"][0]["delta"]["content"].as_str().filter(|t| !t.is_empty()) {
                pieces.push(t.to_string());
            }
            last_event = "";
        }
    }
    assert_eq!(pieces.concat(), content, "{body}");
    assert!(pieces.len() >= 2 || cli["stop"] == "eos", "{pieces:?}");
    assert_eq!(step_records, v["unmask"]["steps"].as_u64().unwrap(), "{body}");
    for (body, needle) in
        [(r#"{"text": "a [MASK] b"}"#, "does not fill masks"), (r#"{"messages": [{"role": "user", "content": "hi"}], "cache": "none"}"#, "does not apply")]
    {
        let path = if body.contains("text") { "/v1/infill" } else { "/v1/chat/completions" };
        let (c, v) = s.post(path, body);
        assert!(c == 400 && error_of(&v).1.contains(needle), "{v}");
    }
}

/// A GPU device lost during a request (destroyed on purpose as the second generation starts):
/// that request gets a 500 saying to retry, the model is loaded again on a fresh device, and
/// the next request gets the same answer as before the loss.
#[test]
fn a_lost_device_fails_one_request_and_the_server_recovers() {
    let s = Server::start_with(&[], &[("UNMASK_SERVE_FAULT", "lose-device:2")]);
    let ask = r#"{"messages": [{"role": "user", "content": "What is 8 + 9?"}], "max_tokens": 16}"#;
    let (c, before) = s.post("/v1/chat/completions", ask);
    assert_eq!(c, 200, "{before}");
    let (c, v) = s.post("/v1/chat/completions", ask);
    assert_eq!(c, 500, "{v}");
    let (kind, message) = error_of(&v);
    assert!(kind == "server_error" && message.contains("GPU") && message.contains("retry"), "{v}");
    let (c, after) = s.post("/v1/chat/completions", ask);
    assert_eq!(c, 200, "{after}\n{}", s.log());
    assert_eq!(after["choices"][0]["message"]["content"], before["choices"][0]["message"]["content"]);
    assert!(s.log().contains("model reloaded"), "{}", s.log());
}
