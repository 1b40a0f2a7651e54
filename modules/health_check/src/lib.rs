//! `health_check`: verifies a host after a deploy, as an Ansible binary module.
//!
//! A task lists what must hold on the host and the module checks all of it at once, each check
//! under its own timeout and the whole run under a deadline. The check kinds, as a result names
//! them:
//!
//! - `disk`: space and inode headroom of filesystems (`disks`), through statvfs;
//! - `memory` and `load`: used memory and the load average per CPU;
//! - `tcp` and `http`: reachability of the services the host depends on, HTTP(S) status, body
//!   and certificate expiry;
//! - `gpu`: NVIDIA GPUs (`gpus`): count, driver version, temperature, ECC errors, retired pages
//!   and row remapping, throttling; through NVML, or `nvidia-smi` in the static build;
//! - `systemd`: units (`systemd`) and the manager's overall state (`system_state`), read over
//!   D-Bus;
//! - `container` and `containers`: one container's state, healthcheck and restarts
//!   (`containers`; a restart loop fails), or the health of every running, restarting, paused
//!   or dead container (`containers_all_healthy`), over the Docker Engine API (Docker, or
//!   Podman's compatible socket).
//!
//! The result has one line per check (`pass`, `warn`, `fail` or `skip`, with what was expected
//! and observed) and a versioned summary; a failed mandatory check fails the task, an advisory
//! one only warns. With `wait_timeout` the failed checks run again every `interval` until every
//! mandatory one passes (services come up late after a deploy), and the summary counts the
//! attempts. The run can also be written on the host as artifacts: the summary document
//! (`summary_path`), JUnit XML (`junit_path`) and a node_exporter textfile (`prometheus_path`).
//!
//! ```yaml
//! - name: Verify the host after the deploy
//!   health_check:
//!     disks: ["/", {path: /var/lib/postgresql, min_free: 20GiB}]
//!     memory: {max_used_percent: 90}
//!     tcp: ["127.0.0.1:5432"]
//!     http:
//!       - url: https://127.0.0.1:8443/healthz
//!         body_contains: ok
//!         mandatory: false
//!     systemd: [postgresql.service, {unit: backup.timer, enabled: true}]
//!     containers: [api, {container: worker, max_restarts: 3}]
//!     gpus: {min_count: 1}
//!     wait_timeout: 2m
//!     summary_path: /var/lib/health_check/summary.json
//! ```
//!
//! The checks only read, so check mode runs them all; only the artifacts are not written.

pub mod args;
pub mod artifacts;
pub mod checks;
pub mod runner;
pub mod summary;
pub mod verdict;

use ansible_module::types::{Duration, StrOrMap};
use ansible_module::{Context, Error, Module, Response};
use args::Args;
use checks::container::{AllContainers, Container};
use checks::disk::Disk;
use checks::gpu::Gpu;
use checks::http::{Clients, Http};
use checks::load::Load;
use checks::memory::Memory;
use checks::systemd::{SystemState, Unit};
use checks::tcp::Tcp;
use checks::Check;
use host_probe::engine::Engine;
use host_probe::systemd::Bus;
use std::path::{Path, PathBuf};
use std::time::Instant;
use verdict::{CheckMeta, Planned};

/// The module, for [`ansible_module::main`].
pub struct HealthCheck;

impl Module for HealthCheck {
    type Args = Args;
    const NAME: &'static str = "health_check";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "Post-deploy host health checks: disks, memory, load, TCP, HTTP(S), NVIDIA GPUs, systemd units and containers.";
    const SUPPORTS_CHECK_MODE: bool = true;

    fn argument_spec() -> serde_json::Map<String, serde_json::Value> {
        ansible_module::spec::argument_spec::<Args>()
    }
    const NO_LOG: &'static [&'static str] = args::NO_LOG;

    fn run(args: Args, ctx: &Context) -> Result<Response, Error> {
        let started = Instant::now();
        // Passwords in URLs are secrets even where no parameter is marked no_log: the URL
        // parser registers them (checks::http::params::HttpUrl).
        ansible_module::on_interrupt(runner::report_so_far);
        let started_at = ansible_module::time::now_rfc3339();
        let waiting = waiting(&args)?;
        let deadline = args.deadline.unwrap_or_else(|| {
            let wait = waiting.map_or(std::time::Duration::ZERO, |w| w.wait_timeout.get());
            Duration(args::DEFAULT_DEADLINE.get() + wait)
        });
        let artifact_paths = artifact_paths(&args)?;
        // The HTTP clients are built once per run and shared by every attempt.
        let mut clients = Clients::default();
        let plans = plan(&args, &mut clients)?;
        if plans.is_empty() {
            return Err(Error::Failed(
                "no checks given: set at least one of disks, memory, load, tcp, http, gpus, systemd, system_state, containers, containers_all_healthy".into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| Error::Failed(format!("cannot start the async runtime: {err}")))?;
        let run = runtime.block_on(runner::run_until_healthy(
            plans,
            || plan(&args, &mut clients),
            deadline,
            waiting,
        ));
        // A check stuck in a blocking call (statvfs on a dead NFS mount) must not hold the exit.
        runtime.shutdown_background();

        let results = run.results;
        let mut summary = summary::Summary::new(
            &results,
            summary::hostname(),
            started_at,
            verdict::round_ms(started.elapsed()),
        );
        summary.attempts = run.attempts;
        summary.waited_ms = verdict::round_ms(run.waited);
        let mut response = Response::ok(summary.message(&results));
        response.set_failed(summary.status == verdict::Status::Fail);
        for warning in summary::warnings(&results) {
            response.warn(warning);
        }
        let [summary_path, junit_path, prometheus_path] = &artifact_paths;
        let requested = artifacts::Requested {
            summary_path: summary_path.1.as_deref(),
            junit_path: junit_path.1.as_deref(),
            prometheus_path: prometheus_path.1.as_deref(),
        };
        match artifacts::write_all(&requested, &summary, &results, ctx.check_mode) {
            Ok(artifacts) => {
                response.insert("artifacts", artifacts);
            }
            Err(message) => {
                response.set_failed(true).set_msg(message);
            }
        }
        response
            .insert("checks", &results)
            .insert("summary", &summary);
        Ok(response)
    }
}

/// The artifact paths of `summary_path`, `junit_path` and `prometheus_path`, with `~` and
/// `$VAR` expanded as Ansible's `path` type does; two artifacts on one path are refused (the
/// second would overwrite the first).
fn artifact_paths(args: &Args) -> Result<[(&'static str, Option<PathBuf>); 3], Error> {
    let paths = [
        (
            "summary_path",
            args.summary_path.as_deref().map(expand_path),
        ),
        ("junit_path", args.junit_path.as_deref().map(expand_path)),
        (
            "prometheus_path",
            args.prometheus_path.as_deref().map(expand_path),
        ),
    ];
    for (i, (first, a)) in paths.iter().enumerate() {
        for (second, b) in &paths[i + 1..] {
            if let (Some(a), Some(b)) = (a, b) {
                if a == b {
                    return Err(Error::InvalidParameter {
                        name: (*second).to_string(),
                        message: format!(
                            "{} is also given as '{first}': give each artifact its own path",
                            a.display()
                        ),
                    });
                }
            }
        }
    }
    Ok(paths)
}

/// `~`, `~/x`, `$HOME/x` and `${VAR}/x` expanded from the module's environment, like
/// Ansible's `path` type (expanduser, then expandvars); an unknown variable stays as written.
pub fn expand_path(path: &Path) -> PathBuf {
    let text = path.to_string_lossy();
    let home = std::env::var("HOME").ok().filter(|h| !h.is_empty());
    let text = match (text.strip_prefix('~'), &home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{home}{rest}")
        }
        _ => text.into_owned(),
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => ("", after),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        match std::env::var(name).ok().filter(|_| !name.is_empty()) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[at..rest.len() - tail.len()]),
        }
        rest = tail;
    }
    out.push_str(rest);
    PathBuf::from(out)
}

/// Reads `wait_timeout` and `interval`; `None` when the run should not wait.
fn waiting(args: &Args) -> Result<Option<runner::Waiting>, Error> {
    let interval = args.interval.unwrap_or(args::DEFAULT_INTERVAL);
    if interval.get() < std::time::Duration::from_millis(10) {
        return Err(Error::InvalidParameter {
            name: "interval".into(),
            message: format!("{interval} is too short (expected at least 10ms)"),
        });
    }
    Ok(args
        .wait_timeout
        .filter(|wait| !wait.get().is_zero())
        .map(|wait_timeout| runner::Waiting {
            wait_timeout,
            interval,
        }))
}

/// The run's checks as they are planned: each entry becomes a [`Planned`] check with its
/// name, mandatory flag, timeout and expectation.
struct Planner {
    default_timeout: std::time::Duration,
    plans: Vec<Planned>,
}

impl Planner {
    /// Plans one check of kind `C`; `default_name` names it when the entry sets no `name`.
    fn add<C: Check>(
        &mut self,
        check: C,
        params: C::Params,
        common: args::Common<'_>,
        default_name: &str,
    ) {
        let meta = CheckMeta {
            kind: C::KIND,
            name: common.name.unwrap_or(default_name).to_string(),
            mandatory: common.mandatory,
            timeout: common.timeout.map_or(self.default_timeout, Duration::get),
            expected: C::expected(&params),
        };
        self.plans.push(checks::plan(check, params, meta));
    }

    /// [`Planner::add`] for a check that needs a place at a bounded resource first (`gate`).
    fn add_gated<C: Check>(
        &mut self,
        check: C,
        params: C::Params,
        common: args::Common<'_>,
        default_name: &str,
        gate: std::sync::Arc<tokio::sync::Semaphore>,
    ) {
        self.add(check, params, common, default_name);
        if let Some(planned) = self.plans.last_mut() {
            planned.gate = Some(gate);
        }
    }
}

/// The system bus for `systemd_bus` (or the default one); the error names the parameter.
pub fn bus(address: Option<&str>) -> Result<Bus, Error> {
    Bus::new(address).map_err(|err| Error::InvalidParameter {
        name: "systemd_bus".into(),
        message: err.to_string(),
    })
}

/// Turns the parameters into checks, in a stable order (disks, memory, load, gpus, tcp, http,
/// systemd, containers), so that index `i` is the same check on every attempt of a
/// wait-until-healthy run.
fn plan(args: &Args, clients: &mut Clients) -> Result<Vec<Planned>, Error> {
    let default_timeout = args.timeout.unwrap_or(args::DEFAULT_TIMEOUT);
    let mut planner = Planner {
        default_timeout: default_timeout.get(),
        plans: Vec::new(),
    };
    for StrOrMap(spec) in args.disks.iter().flatten() {
        planner.add(Disk, spec.clone(), spec.common(), &spec.path);
    }
    if let Some(spec) = &args.memory {
        planner.add(Memory, spec.clone(), spec.common(), "memory");
    }
    if let Some(spec) = &args.load {
        planner.add(Load, spec.clone(), spec.common(), "load");
    }
    if let Some(spec) = &args.gpus {
        planner.add(Gpu, spec.clone(), spec.common(), "gpus");
    }
    for StrOrMap(spec) in args.tcp.iter().flatten() {
        // The expectation names the timeout in force.
        let mut spec = spec.clone();
        spec.timeout = Some(spec.timeout.unwrap_or(default_timeout));
        let name = spec.address.to_string();
        planner.add(Tcp, spec.clone(), spec.common(), &name);
    }
    for (index, StrOrMap(spec)) in args.http.iter().flatten().enumerate() {
        // The body is read until a little before the timeout in force.
        let mut spec = spec.clone();
        spec.timeout = Some(spec.timeout.unwrap_or(default_timeout));
        let check = Http::new(&spec, clients, &format!("http[{index}]"))?;
        // The URL without its userinfo (kept apart when parsing).
        planner.add(check, spec.clone(), spec.common(), spec.url.0.as_str());
    }
    // One bus per attempt: a bus that was down on the first attempt may be up on the next.
    let bus = bus(args.systemd_bus.as_deref())?;
    for (index, StrOrMap(spec)) in args.systemd.iter().flatten().enumerate() {
        checks::systemd::validate(spec, &format!("systemd[{index}]"))?;
        let check = Unit { bus: bus.clone() };
        // The bus's bound on queries in flight is waited for before the check's timeout starts.
        let slots = bus.query_slots();
        planner.add_gated(
            check,
            spec.clone(),
            spec.common(),
            spec.unit.as_str(),
            slots,
        );
    }
    if let Some(StrOrMap(spec)) = &args.system_state {
        let check = SystemState { bus: bus.clone() };
        planner.add(check, spec.clone(), spec.common(), "system-state");
    }
    // One engine connection per attempt, shared by the container checks: an engine that was
    // down on the first attempt may be up on the next.
    let container_specs: Vec<&checks::container::params::ContainerParams> = args
        .containers
        .iter()
        .flatten()
        .map(|StrOrMap(spec)| spec)
        .collect();
    let all_healthy = args
        .containers_all_healthy
        .as_ref()
        .and_then(args::Toggle::enabled);
    if !container_specs.is_empty() || all_healthy.is_some() {
        let longest_timeout = container_specs
            .iter()
            .map(|spec| spec.timeout)
            .chain(all_healthy.map(|spec| spec.timeout))
            .map(|timeout| timeout.unwrap_or(default_timeout).get())
            .max()
            .unwrap_or_default();
        let socket = args.docker_host.clone().unwrap_or_else(|| {
            checks::container::params::default_docker_host(
                std::env::var("DOCKER_HOST").ok().as_deref(),
            )
        });
        let engine = Engine::shared(socket.path(), longest_timeout);
        for (index, spec) in container_specs.into_iter().enumerate() {
            checks::container::validate(spec, &format!("containers[{index}]"))?;
            let check = Container {
                engine: engine.clone(),
            };
            planner.add(check, spec.clone(), spec.common(), spec.container.as_str());
        }
        if let Some(spec) = all_healthy {
            let check = AllContainers {
                engine: engine.clone(),
            };
            planner.add(check, spec.clone(), spec.common(), "all-healthy");
        }
    }
    unique_names(&planner.plans)?;
    Ok(planner.plans)
}

/// Refuses two checks with one `kind:name`: their results, JUnit test cases and Prometheus
/// series could not be told apart (node_exporter drops a duplicate series silently). The error
/// names the second entry's parameter, e.g. `tcp[1].name`.
fn unique_names(plans: &[Planned]) -> Result<(), Error> {
    use checks::Kind;
    let mut seen = std::collections::HashSet::new();
    let mut per_kind = std::collections::HashMap::new();
    for planned in plans {
        let kind = planned.meta.kind;
        let index = per_kind.entry(kind.as_str()).or_insert(0usize);
        let label = format!("{}:{}", kind.as_str(), planned.meta.name);
        if !seen.insert(label.clone()) {
            let option = match kind {
                Kind::Disk => format!("disks[{index}].name"),
                Kind::Tcp | Kind::Http | Kind::Systemd => format!("{kind}[{index}].name"),
                Kind::Container => format!("containers[{index}].name"),
                Kind::Memory | Kind::Load | Kind::Gpu | Kind::Containers => {
                    format!("{kind}.name")
                }
            };
            return Err(Error::InvalidParameter {
                name: option,
                message: format!(
                    "duplicate check name {label}: give each check its own `name` (results, \
                     JUnit and Prometheus series are keyed by kind and name)"
                ),
            });
        }
        *index += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::expand_path;
    use std::path::Path;

    #[test]
    fn a_path_with_tilde_dollar_home_or_braces_expands_and_an_unknown_variable_stays() {
        let home = std::env::var("HOME").unwrap_or_default();
        if home.is_empty() {
            return;
        }
        assert_eq!(
            expand_path(Path::new("~/a")),
            Path::new(&format!("{home}/a"))
        );
        assert_eq!(
            expand_path(Path::new("$HOME/a")),
            Path::new(&format!("{home}/a"))
        );
        assert_eq!(
            expand_path(Path::new("${HOME}/a")),
            Path::new(&format!("{home}/a"))
        );
        assert_eq!(
            expand_path(Path::new("/x/$HC_SURELY_UNSET_VARIABLE/y")),
            Path::new("/x/$HC_SURELY_UNSET_VARIABLE/y")
        );
        assert_eq!(expand_path(Path::new("~other/a")), Path::new("~other/a"));
        assert_eq!(
            expand_path(Path::new("/plain/path")),
            Path::new("/plain/path")
        );
    }
}
