//! A `binarylm serve` process for end-to-end tests: started on a free loopback port, killed
//! when dropped (so a failing test never leaves a server behind).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::Project;

/// A `binarylm serve` process, killed if the test fails before stopping it.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `binarylm serve <target> --port 0` in `p` and waits for its address.
    pub fn start(p: &Project, target: &str) -> Server {
        Server::start_with(p, target, &[])
    }

    /// The same, with extra environment variables.
    pub fn start_with(p: &Project, target: &str, env: &[(&str, &str)]) -> Server {
        let mut cmd = p.cmd(&["serve", target, "--port", "0", "--device", "cpu"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start binarylm serve");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        // Drain the log so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut sink);
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("`binarylm serve {target}` printed no address within 60 s");
            }
        };
        let addr = url.trim_start_matches("http://").to_string();
        Server { child, url, addr }
    }
}
