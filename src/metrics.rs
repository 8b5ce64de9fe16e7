//! Prometheus metrics, served at `/metrics`: requests by route and status,
//! latency, logins by outcome, password hashing, tokens, mail, SMS, store errors.
//! One registry per running Clef (no global), so tests read their own.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's pattern (`/authorize`), never the raw path: bounded cardinality.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // label values as Prometheus users write them
pub enum LoginResult {
    ok,
    failed,
    locked,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    pub outcome: LoginResult,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum TokenKind {
    access_token,
    id_token,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub kind: TokenKind,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Delivery {
    sent,
    failed,
    /// Not sent: a limit held it back (recovery's hourly counts, the day's SMS budget).
    held_back,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailLabels {
    pub outcome: Delivery,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ConnectionState {
    idle,
    in_use,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    pub state: ConnectionState,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Store {
    database,
    short_lived,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    pub store: Store,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s: discovery answers in microseconds, a login waits for argon2.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Every metric, cheap to clone (each is shared behind an `Arc`).
#[derive(Clone)]
pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Latency,
    pub logins: Family<LoginLabels, Counter>,
    /// Password hashes waiting for a core, and those turned away (503).
    pub hashing_queue: Gauge,
    pub hashing_rejected: Counter,
    pub tokens_issued: Family<TokenLabels, Counter>,
    pub mail: Family<MailLabels, Counter>,
    pub sms: Family<MailLabels, Counter>,
    pub store_errors: Family<StoreLabels, Counter>,
    /// Requests answered 503 at once while the database's breaker is open.
    pub requests_shed: Counter,
    /// Code exchanges written per database transaction (`oidc::ledger`).
    pub exchange_batches: Histogram,
    /// The database pool's connections, open and at most: requests wait for
    /// one when every open connection is in use and the pool is full.
    pub database_connections: Family<ConnectionLabels, Gauge>,
    pub database_connections_max: Gauge,
}

impl Default for Metrics {
    /// Every label value an alert may watch is there from the start, at 0:
    /// a series born at 1 with its first event is an increase Prometheus
    /// does not see (`increase()` needs two samples).
    fn default() -> Self {
        let metrics = Self::empty();
        for outcome in [LoginResult::ok, LoginResult::failed, LoginResult::locked] {
            drop(metrics.logins.get_or_create(&LoginLabels { outcome }));
        }
        for kind in [TokenKind::access_token, TokenKind::id_token] {
            drop(metrics.tokens_issued.get_or_create(&TokenLabels { kind }));
        }
        for outcome in [Delivery::sent, Delivery::failed, Delivery::held_back] {
            drop(metrics.mail.get_or_create(&MailLabels { outcome }));
            drop(metrics.sms.get_or_create(&MailLabels { outcome }));
        }
        for store in [Store::database, Store::short_lived] {
            drop(metrics.store_errors.get_or_create(&StoreLabels { store }));
        }
        metrics
    }
}

impl Metrics {
    fn empty() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            logins: Family::default(),
            hashing_queue: Gauge::default(),
            hashing_rejected: Counter::default(),
            tokens_issued: Family::default(),
            mail: Family::default(),
            sms: Family::default(),
            store_errors: Family::default(),
            requests_shed: Counter::default(),
            exchange_batches: Histogram::new(exponential_buckets(1.0, 2.0, 7)),
            database_connections: Family::default(),
            database_connections_max: Gauge::default(),
        }
    }

    /// Reads the pool's connections now (the pool counts them itself).
    pub fn database_pool(&self, pool: &crate::storage::Db) {
        let open = i64::from(pool.size());
        let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX).min(open);
        let state = |state| ConnectionLabels { state };
        let connections = &self.database_connections;
        connections
            .get_or_create(&state(ConnectionState::idle))
            .set(idle);
        connections
            .get_or_create(&state(ConnectionState::in_use))
            .set(open - idle);
        self.database_connections_max
            .set(i64::from(pool.options().get_max_connections()));
    }

    pub fn login(&self, outcome: LoginResult) {
        self.logins.get_or_create(&LoginLabels { outcome }).inc();
    }

    pub fn token(&self, kind: TokenKind) {
        self.tokens_issued
            .get_or_create(&TokenLabels { kind })
            .inc();
    }

    pub fn mail(&self, outcome: Delivery) {
        self.mail.get_or_create(&MailLabels { outcome }).inc();
    }

    pub fn sms(&self, outcome: Delivery) {
        self.sms.get_or_create(&MailLabels { outcome }).inc();
    }

    pub fn store_error(&self, store: Store) {
        self.store_errors
            .get_or_create(&StoreLabels { store })
            .inc();
    }

    /// The text exposition format Prometheus scrapes: Clef's metrics under
    /// `clef_`, and the process's standard ones (`process_resident_memory_bytes`,
    /// `process_cpu_seconds_total`, `process_open_fds`…), read as it renders.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut root = Registry::default();
        process(&mut root);
        let registry = root.sub_registry_with_prefix("clef");
        // `clef_build_info{version="…"} 1`: which version each instance runs
        // (a rolling upgrade under way shows two).
        registry.register(
            "build",
            "The version of Clef this instance runs",
            prometheus_client::metrics::info::Info::new(vec![(
                "version",
                env!("CARGO_PKG_VERSION"),
            )]),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            self.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            self.latency.clone(),
        );
        registry.register("logins", "Password logins by outcome", self.logins.clone());
        registry.register(
            "password_hashing_queue",
            "Password hashes waiting for a core",
            self.hashing_queue.clone(),
        );
        registry.register(
            "password_hashing_rejected",
            "Password hashes turned away because every core was busy (answered 503)",
            self.hashing_rejected.clone(),
        );
        registry.register(
            "requests_shed",
            "Requests answered 503 at once because the database was found down (its breaker open)",
            self.requests_shed.clone(),
        );
        registry.register(
            "tokens_issued",
            "Tokens issued by kind",
            self.tokens_issued.clone(),
        );
        registry.register("mail", "Mail by delivery outcome", self.mail.clone());
        registry.register("sms", "SMS by delivery outcome", self.sms.clone());
        registry.register(
            "store_errors",
            "Errors from the database or the short-lived store",
            self.store_errors.clone(),
        );
        registry.register(
            "exchange_write_batch_size",
            "Code exchanges written per database transaction (group commit)",
            self.exchange_batches.clone(),
        );
        registry.register(
            "database_connections",
            "Open connections of the database pool, idle or in use",
            self.database_connections.clone(),
        );
        registry.register(
            "database_connections_max",
            "Connections the database pool opens at most",
            self.database_connections_max.clone(),
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &root)?;
        Ok(text)
    }
}

/// The standard process metrics (as Prometheus's own clients name them),
/// those the system tells.
fn process(registry: &mut Registry) {
    use prometheus_client::metrics::counter::ConstCounter;
    use prometheus_client::metrics::gauge::ConstGauge;
    use prometheus_client::registry::Unit;
    let now = metrics_process::collector::collect();
    let gauge =
        |value: Option<u64>| value.map(|v| ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)));
    if let Some(seconds) = now.cpu_seconds_total {
        registry.register_with_unit(
            "process_cpu",
            "Total user and system CPU time spent in seconds",
            Unit::Seconds,
            ConstCounter::new(seconds),
        );
    }
    for (name, help, unit, value) in [
        (
            "process_resident_memory",
            "Resident memory size in bytes",
            Some(Unit::Bytes),
            now.resident_memory_bytes,
        ),
        (
            "process_virtual_memory",
            "Virtual memory size in bytes",
            Some(Unit::Bytes),
            now.virtual_memory_bytes,
        ),
        (
            "process_start_time",
            "Start time of the process since the Unix epoch in seconds",
            Some(Unit::Seconds),
            now.start_time_seconds,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors",
            None,
            now.open_fds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors",
            None,
            now.max_fds,
        ),
        (
            "process_threads",
            "Number of OS threads in the process",
            None,
            now.threads,
        ),
    ] {
        let Some(value) = gauge(value) else { continue };
        match unit {
            Some(unit) => registry.register_with_unit(name, help, unit, value),
            None => registry.register(name, help, value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_the_exposition() {
        let metrics = Metrics::default();
        metrics.login(LoginResult::failed);
        metrics.login(LoginResult::failed);
        metrics.token(TokenKind::id_token);
        let text = metrics.render().unwrap();
        assert!(
            text.contains(&format!(
                "clef_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        assert!(
            text.contains("clef_logins_total{outcome=\"failed\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("clef_tokens_issued_total{kind=\"id_token\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
        // The process's own, under their standard names.
        let resident = text
            .lines()
            .find_map(|line| line.strip_prefix("process_resident_memory_bytes "))
            .and_then(|bytes| bytes.parse::<u64>().ok());
        assert!(resident.is_some_and(|bytes| bytes > 1 << 20), "{text}");
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
        assert!(text.contains("process_open_fds "), "{text}");
    }
}
