//! Clef on a real Redis Cluster (`redis_cluster = true`): three masters and a
//! replica of each, `redis-server` nodes in cluster mode started here on free
//! ports, the 16,384 slots spread by `redis-cli --cluster create`; then a
//! master is killed and its replica takes over. Run with the Redis pass
//! (`CLEF_TEST_REDIS_URL` set, as `.ci/run` does), which has `redis-server`;
//! without it the test has nothing to stand on and returns.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clef::storage::{Attempt, Backoff};
use secrecy::SecretString;

use crate::helpers::*;

/// Three masters and three replicas, stopped and removed on drop.
struct OwnCluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl OwnCluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Six nodes and their six bus ports, all distinct.
        let mut ports = free_ports(12);
        let bus_ports = ports.split_off(6);
        let nodes = ports
            .iter()
            .zip(&bus_ports)
            .map(|(port, bus_port)| {
                let folder = dir.path().join(port.to_string());
                std::fs::create_dir(&folder).unwrap();
                Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    // The bus port, by default port + 10,000: past 65,535 for
                    // half the ports free_port hands out.
                    .args(["--cluster-port", &bus_port.to_string()])
                    .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                    .args(["--save", "", "--appendonly", "no"])
                    // A replica's first copy starts at once, not after 5 s.
                    .args(["--repl-diskless-sync-delay", "0"])
                    .arg("--dir")
                    .arg(&folder)
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server (the Redis pass installs it)")
            })
            .collect();
        for port in &ports {
            wait_for(|| redis_cli(*port, &["ping"]).is_some_and(|out| out.trim() == "PONG"));
        }
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli");
        assert!(
            created.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        // Every node sees the whole cluster: three masters, three replicas,
        // each replica with its first copy of its master.
        for port in &ports {
            wait_for(|| {
                redis_cli(*port, &["cluster", "info"])
                    .is_some_and(|info| info.contains("cluster_state:ok"))
                    && redis_cli(*port, &["cluster", "nodes"])
                        .is_some_and(|nodes| nodes.matches("slave").count() == 3)
                    && redis_cli(*port, &["info", "replication"]).is_some_and(|info| {
                        info.contains("role:master") || info.contains("master_link_status:up")
                    })
            });
        }
        Self {
            nodes,
            ports,
            _dir: dir,
        }
    }

    /// The URL list Clef is given: one seed node is enough, two are named.
    fn seeds(&self) -> String {
        format!(
            "redis://127.0.0.1:{}, redis://127.0.0.1:{}",
            self.ports[0], self.ports[1]
        )
    }

    /// How many keys each master holds.
    fn keys_per_master(&self) -> Vec<u64> {
        self.masters()
            .into_iter()
            .map(|(port, _)| {
                redis_cli(port, &["dbsize"])
                    .and_then(|out| out.trim().parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    }

    /// The masters' ports and slot ranges, from CLUSTER NODES (masters that
    /// hold slots).
    fn masters(&self) -> Vec<(u16, Vec<(u16, u16)>)> {
        let nodes = redis_cli(self.ports[0], &["cluster", "nodes"]).unwrap();
        nodes
            .lines()
            .filter(|line| line.split(' ').nth(2).is_some_and(|f| f.contains("master")))
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let port = fields[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
                let ranges = fields[8..]
                    .iter()
                    .filter_map(|range| {
                        let (low, high) = range.split_once('-').unwrap_or((range, range));
                        Some((low.parse().ok()?, high.parse().ok()?))
                    })
                    .collect();
                (port, ranges)
            })
            .filter(|(_, ranges): &(u16, Vec<(u16, u16)>)| !ranges.is_empty())
            .collect()
    }

    /// Kills the master that holds `key` (SIGKILL: no goodbye to the cluster).
    fn kill_master_of(&mut self, key: &str) -> u16 {
        let slot: u16 = redis_cli(self.ports[0], &["cluster", "keyslot", key])
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let (port, _) = self
            .masters()
            .into_iter()
            .find(|(_, ranges)| {
                ranges
                    .iter()
                    .any(|(low, high)| (*low..=*high).contains(&slot))
            })
            .expect("a master holds every slot");
        let index = self.ports.iter().position(|p| *p == port).unwrap();
        self.nodes[index].kill().unwrap();
        self.nodes[index].wait().unwrap();
        port
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_for(ready: impl Fn() -> bool) {
    for _ in 0..100 {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the Redis Cluster did not come up");
}

#[tokio::test]
async fn a_redis_cluster_holds_the_short_lived_store_and_the_code_flow() {
    if std::env::var("CLEF_TEST_REDIS_URL").is_err() {
        return;
    }
    let mut cluster = OwnCluster::start();
    let prefix = format!("clef-test-{}:", uuid::Uuid::new_v4().simple());
    let app = spawn_app_with(|config| {
        config.redis_url = Some(SecretString::from(cluster.seeds()));
        config.redis_cluster = true;
        config.redis_prefix = prefix.clone();
    })
    .await;
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200, "ready on the cluster");

    // Every operation of the store, on keys that fall in different slots.
    let store = &app.app.store;
    for n in 0..30 {
        store
            .put(&format!("k{n}"), "v", Duration::from_secs(60))
            .await
            .unwrap();
    }
    let spread = cluster.keys_per_master();
    assert!(
        spread.len() == 3 && spread.iter().all(|keys| *keys > 0),
        "keys are spread over the three shards: {spread:?}"
    );
    assert_eq!(store.get("k7").await.unwrap().as_deref(), Some("v"));
    assert_eq!(
        concurrent_takers_served(store, "k7", 16).await,
        1,
        "of 16 concurrent takers, one gets the value"
    );
    assert_eq!(
        store
            .replace("k8", "w", Duration::from_secs(60))
            .await
            .unwrap()
            .as_deref(),
        Some("v")
    );
    assert_eq!(store.get("k8").await.unwrap().as_deref(), Some("w"));
    store.delete("k8").await.unwrap();
    assert_eq!(store.get("k8").await.unwrap(), None);
    let counts: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.incr("n", Duration::from_secs(60)).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for count in counts {
        seen.push(count.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<u64>>(), "INCR is atomic");
    let rule = Backoff {
        free: 2,
        first_delay: 30,
        max_delay: 600,
        window: Duration::from_secs(900),
    };
    let now = app.app.now_ms();
    assert!(matches!(
        store.attempt("a", &rule, now).await.unwrap(),
        Attempt::Admitted { count: 1 }
    ));
    assert!(matches!(
        store.attempt("a", &rule, now).await.unwrap(),
        Attempt::Admitted { count: 2 }
    ));
    assert!(matches!(
        store.attempt("a", &rule, now).await.unwrap(),
        Attempt::Refused { .. }
    ));
    store.refund("a").await.unwrap();
    store.ping().await.unwrap();

    // The code flow: sessions, codes and access tokens in the cluster.
    app.family().await;
    let client = app.client(false).await;
    let browser = browser();
    let back = authorize_and_login(
        &app,
        &browser,
        &authorize_url(&app, &client.0, &[]),
        "claire.martin",
    )
    .await;
    let code = location_param(&back, "code").unwrap();
    let tokens = exchange(&app, &client, &code, None).await;
    assert_eq!(tokens.status(), 200);
    let tokens: serde_json::Value = tokens.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&app, access).await, 200);
    let replay = exchange(&app, &client, &code, None).await;
    assert_eq!(replay.status(), 400, "a code is redeemed once");
    assert_eq!(
        userinfo_status(&app, access).await,
        401,
        "the replay revoked the token the code gave"
    );
    // The browser's session, kept in the cluster, signs in again without a password.
    let again = browser
        .get(authorize_url(&app, &client.0, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 302);
    assert!(location_param(&again, "code").is_some());

    // A master dies. Until its replica takes over, calls fail fast as
    // unavailable (503 to people and clients); then Clef follows the new
    // master by itself, and what the shard held is still there.
    cluster.kill_master_of(&format!("{prefix}k3"));
    let killed = std::time::Instant::now();
    let mut outage = 0;
    loop {
        let call = std::time::Instant::now();
        match store.get("k3").await {
            Ok(value) => {
                assert_eq!(value.as_deref(), Some("v"), "the replica had the key");
                break;
            }
            Err(e) => {
                assert!(
                    clef::storage::is_unavailable(&e),
                    "a failover is an unavailability: {e:#}"
                );
                assert!(
                    call.elapsed() < Duration::from_secs(4),
                    "a call fails within its bound"
                );
                outage += 1;
            }
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the replica did not take over"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Other shards' calls may still meet the moved slots once (503, fast);
    // the browser's session itself survived.
    let mut again = None;
    for _ in 0..20 {
        let answer = browser
            .get(authorize_url(&app, &client.0, &[]))
            .send()
            .await
            .unwrap();
        if answer.status() != 503 {
            again = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let again = again.expect("Clef answers again after the failover");
    assert_eq!(again.status(), 302, "the session survived the failover");
    let code = location_param(&again, "code").unwrap();
    let tokens = exchange(&app, &client, &code, None).await;
    assert_eq!(tokens.status(), 200, "after {outage} failed calls");
}
