//! `metrics-hub emulate`: the five emulators as a process of their own, for any program's
//! tests.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::net::{TcpListener, TcpStream};

use crate::demo::{BACKENDS, Demo};

/// Which port each emulator is reachable on.
#[derive(Debug, Default)]
pub(crate) struct Ports {
    /// The first of five consecutive ports, in the order outline, appoptics, unleash, coopr,
    /// vumi.
    pub(crate) base: Option<u16>,
    /// Per backend, overriding the base.
    pub(crate) outline: Option<u16>,
    pub(crate) appoptics: Option<u16>,
    pub(crate) unleash: Option<u16>,
    pub(crate) coopr: Option<u16>,
    pub(crate) vumi: Option<u16>,
}

impl Ports {
    /// The fixed port of `backend`, if one is asked for.
    fn of(&self, backend: &str) -> Option<u16> {
        let own = match backend {
            "outline" => self.outline,
            "appoptics" => self.appoptics,
            "unleash" => self.unleash,
            "coopr" => self.coopr,
            "vumi" => self.vumi,
            _ => None,
        };
        own.or_else(|| {
            let offset = BACKENDS.iter().position(|b| *b == backend)?;
            self.base?.checked_add(u16::try_from(offset).ok()?)
        })
    }
}

/// Starts and seeds the emulators, prints the environment that points at them, and serves
/// until SIGTERM or SIGINT.
pub(crate) async fn run(ports: &Ports) -> ExitCode {
    let demo = match Demo::start_emulated().await {
        Ok(demo) => demo,
        Err(error) => {
            eprintln!("metrics-hub: could not start the emulators: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut fixed = Vec::new();
    for backend in BACKENDS {
        let (Some(port), Some(target)) = (ports.of(backend), demo.emulators.address(backend))
        else {
            continue;
        };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        match TcpListener::bind(address).await {
            Ok(listener) => {
                tokio::spawn(forward(listener, target));
                fixed.push((backend, address));
            }
            Err(error) => {
                eprintln!("metrics-hub: cannot listen on {address} for {backend}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let environment = demo.emulators.environment(|backend| {
        fixed
            .iter()
            .find(|(b, _)| *b == backend)
            .map(|(_, address)| *address)
    });
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "# metrics-hub emulate: the five emulators, seeded; stop them with SIGTERM or Ctrl-C"
    );
    for (name, value) in &environment {
        let _ = writeln!(stdout, "export {name}={}", shell_quote(value));
    }
    let _ = stdout.flush();
    drop(stdout);
    for backend in BACKENDS {
        let address = fixed
            .iter()
            .find(|(b, _)| *b == backend)
            .map(|(_, a)| *a)
            .or_else(|| demo.emulators.address(backend));
        if let Some(address) = address {
            tracing::info!(backend, %address, "emulator ready");
        }
    }
    crate::shutdown_signal().await;
    tracing::info!("stopping the emulators");
    drop(demo);
    ExitCode::SUCCESS
}

/// Relays every connection on `listener` to `target`, byte for byte (TLS included).
async fn forward(listener: TcpListener, target: SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// Single-quotes a value for POSIX shells.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_base_unless_given() {
        let ports = Ports {
            base: Some(18080),
            vumi: Some(9000),
            ..Ports::default()
        };
        assert_eq!(ports.of("outline"), Some(18080));
        assert_eq!(ports.of("coopr"), Some(18083));
        assert_eq!(ports.of("vumi"), Some(9000));
        assert_eq!(Ports::default().of("outline"), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("*:*.tok"), "'*:*.tok'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
