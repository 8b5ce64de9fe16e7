//! Failed-attempt protection (SPEC §3.1) for every secret a person types: login,
//! the current password on « Mon compte », the birth date of a first connection.
//!
//! Each attempt is counted before it is checked, atomically, so concurrent
//! attempts cannot slip past the count. Three counters:
//! - per account: a progressive delay, never a hard lock, and not pushed
//!   further by attempts refused while it runs;
//! - per client address (an IPv6 /64): a plain limit, then a lock, which
//!   still lets in, on counts of their own, the accounts signed in to from
//!   that address lately ([`Admission::RightOnly`]): a shared address
//!   someone else locked does not keep them out;
//! - per trusted browser: a browser that signed in to the account before
//!   (device cookie) is counted on its own and escapes the other two, so an
//!   attacker who knows a parent's identifier cannot keep the parent out.
//!
//! The store names an account's counters by a keyed tag of the identifier
//! typed, never by the text itself: it may be a password typed in the wrong
//! box.

use std::net::IpAddr;
use std::time::Duration;

use super::devices::{DeviceKey, TrustedDevice};
use crate::storage::{Attempt, Backoff, ShortLived};

/// Five attempts pass at once; then 2 s, 4 s, 8 s… up to 5 minutes between
/// attempts; forgotten 15 minutes after the last one.
pub const PER_ACCOUNT: Backoff = Backoff {
    free: 5,
    first_delay: 2,
    max_delay: 5 * 60,
    window: Duration::from_secs(15 * 60),
};

/// A trusted browser gets the account's rule, on its own counter.
pub const PER_DEVICE: Backoff = PER_ACCOUNT;

/// 100 attempts per address, then 15 minutes of lock (from the 100th attempt;
/// attempts made while locked do not extend it). Successful attempts are taken
/// back, so a computer room where a class signs in does not lock itself.
pub const PER_ADDRESS: Backoff = Backoff {
    free: 100,
    first_delay: 15 * 60,
    max_delay: 15 * 60,
    window: Duration::from_secs(15 * 60),
};

/// Wrong birth dates per account, wherever the birth date is asked (first
/// connection, grouping a letter's account): ten, then one a day for the
/// letter's three months (about a hundred in all, not ten a day: a child's
/// birth date has a few hundred likely values, the class printed on the
/// letter giving its year). Only the holder of the letter's password gets to
/// type one: unlike the password's counters, this one is neither escaped by
/// a device cookie nor cleared by a successful login, so signing in again
/// with the letter does not buy more guesses. The right date, or a new
/// letter from the school, starts it again.
pub const BIRTH_DATES: Backoff = Backoff {
    free: 10,
    first_delay: 24 * 3600,
    max_delay: 24 * 3600,
    window: Duration::from_secs(92 * 24 * 3600),
};

/// Recovery requests per client address: 30 an hour, then a lock of an hour
/// (a school's computer room may help a few families; a script may not).
pub const RECOVERY_PER_ADDRESS: Backoff = Backoff {
    free: 30,
    first_delay: 3600,
    max_delay: 3600,
    window: Duration::from_secs(3600),
};

/// Reset SMS one client address gets sent for accounts it never signed in
/// to: five an hour, then none until the hour is over. The day's SMS budget
/// (`sms_daily_limit`) is national: without this, one address asking for
/// guessed identifiers all day spent most of it, and parents asking from a
/// new phone got nothing.
pub const SMS_PER_ADDRESS: Backoff = Backoff {
    free: 5,
    first_delay: 3600,
    max_delay: 3600,
    window: Duration::from_secs(3600),
};

/// Reset SMS to strangers of the accounts from one IPv6 /48 (a customer's or
/// an organisation's whole network, 65,536 /64s): twenty an hour. Without
/// it, one network asking from each of its /64s in turn spent the day's
/// budget in an hour.
pub const SMS_PER_NETWORK: Backoff = Backoff {
    free: 20,
    first_delay: 3600,
    max_delay: 3600,
    window: Duration::from_secs(3600),
};

/// Failed client authentications at the token, introspection and
/// revocation endpoints per client address: 50 in 15 minutes, then the
/// address's failing requests are answered 429 for 15 minutes, while a
/// client that authenticates is served (a school's services behind one NAT
/// address are not locked out by a pupil's bogus requests). At `/register`,
/// the address is answered 429 before anything is checked. Client secrets
/// are 32 random bytes: the limit is against floods, not guessing. Only
/// failures count: a relying party's own traffic, however heavy, never does.
pub const CLIENT_AUTH_PER_ADDRESS: Backoff = Backoff {
    free: 50,
    first_delay: 15 * 60,
    max_delay: 15 * 60,
    window: Duration::from_secs(15 * 60),
};

/// Confirmation mails a person asks for (sent again, to a corrected or a
/// changed address): five an hour per account, and five an hour to one
/// address whatever the accounts, then none until the hour is over. A
/// session, even an attacker's own, cannot make Clef mail an address over
/// and over, nor can a few accounts together.
pub const CONFIRMATION_MAILS: Backoff = Backoff {
    free: 5,
    first_delay: 3600,
    max_delay: 3600,
    window: Duration::from_secs(3600),
};

/// How long a client address stays familiar to an account after a sign-in
/// from it (a school's or a mobile operator's shared address a person signs
/// in from every week): see [`Admission::RightOnly`].
pub const FAMILIAR_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// While an address is locked, the attempts it may still make on accounts
/// signed in to from it ([`Admission::RightOnly`]): another hundred in 15
/// minutes in all, so that the lock opens no wider door to a spray than the
/// limit before it; and each account's on a count of the account and the
/// address, by the account's rule, which no one elsewhere shares (the
/// account's own count would tell a second device whether the account is
/// used from the locked address).
pub const FAMILIAR_PER_ADDRESS: Backoff = PER_ADDRESS;

/// Where an attempt comes from: the client address (read through the trusted
/// proxies), and the browser if it proved a past sign-in to the account tried.
#[derive(Debug, Clone)]
pub struct Origin {
    pub address: IpAddr,
    pub device: Option<TrustedDevice>,
}

/// Whether an attempt may be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Not checked, and not counted: come back in `retry_after` seconds.
    Closed {
        retry_after: u64,
    },
}

/// Whether an attempt on an account's password may be checked
/// ([`Throttle::enter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Checked, and answered as the check says.
    Open,
    /// The address is locked, perhaps by someone else behind it (a school's
    /// or a mobile operator's NAT), but the person signed in to this account
    /// from it lately: checked, counted on a count of the account at this
    /// address and on the address's budget ([`FAMILIAR_PER_ADDRESS`]), and
    /// only a right password is told as such. A wrong one is answered as `Closed`,
    /// so that the lock tells no one behind the address which accounts are
    /// used from there. (Where the person is in the account already, on
    /// « Mon compte », in the back office or at a first connection, there
    /// is nothing to hide from them: answered as `Open`.)
    RightOnly { retry_after: u64 },
    /// Not checked, and not counted: come back in `retry_after` seconds.
    Closed { retry_after: u64 },
}

impl From<Gate> for Admission {
    fn from(gate: Gate) -> Self {
        match gate {
            Gate::Open => Self::Open,
            Gate::Closed { retry_after } => Self::Closed { retry_after },
        }
    }
}

enum Counter<'a> {
    Account(&'a str),
    BirthDate(&'a str),
    ConfirmationMail(&'a str),
    ConfirmationMailTo(&'a str),
    Address(IpAddr),
    Device(&'a TrustedDevice),
    /// A sign-in to the account from the address (not a count: a mark).
    Familiar(&'a str, IpAddr),
    /// Attempts on the account from the address while it is locked.
    FamiliarAttempts(&'a str, IpAddr),
    /// All of the address's attempts while it is locked.
    FamiliarBudget(IpAddr),
}

/// The client an address stands for: itself, or its /64 for IPv6 (one IPv6
/// client usually holds a whole /64) — but an IPv4 client behind a
/// translator (IPv4-mapped `::ffff:a.b.c.d`, NAT64's `64:ff9b::a.b.c.d`,
/// RFC 6052) is its IPv4 address: every IPv4 client shares that /64.
fn client(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None if nat64 => std::net::Ipv4Addr::from_bits(v6.to_bits() as u32).to_string(),
                None => format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]),
            }
        }
    }
}

/// The IPv6 /48 an IPv6 client (a /64, [`client`]) is part of; `None` for an
/// IPv4 client, however written.
fn network(address: IpAddr) -> Option<String> {
    let client = client(address);
    let IpAddr::V6(v6) = address else { return None };
    let s = v6.segments();
    client
        .ends_with("/64")
        .then(|| format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
}

/// The counters, in the short-lived store.
pub struct Throttle {
    store: ShortLived,
    tags: DeviceKey,
}

impl Throttle {
    /// Counters in `store`, accounts named by tags keyed with `tags`.
    pub fn new(store: ShortLived, tags: DeviceKey) -> Self {
        Self { store, tags }
    }

    fn key(&self, counter: &Counter<'_>) -> String {
        match counter {
            Counter::Account(identifier) => format!("attempts:account:{}", self.tag(identifier)),
            Counter::BirthDate(identifier) => {
                format!("attempts:birthdate:{}", self.tag(identifier))
            }
            Counter::ConfirmationMail(account_id) => format!("mails:confirmation:{account_id}"),
            Counter::ConfirmationMailTo(address) => format!(
                "mails:confirmation-to:{}",
                self.keyed("confirmation-recipient", address)
            ),
            Counter::Address(address) => format!("attempts:address:{}", self.address(*address)),
            Counter::Device(device) => format!("attempts:device:{}", device.as_str()),
            Counter::Familiar(identifier, address) => {
                format!("familiar:{}", self.pair(identifier, *address))
            }
            Counter::FamiliarAttempts(identifier, address) => {
                format!("attempts:familiar:{}", self.pair(identifier, *address))
            }
            Counter::FamiliarBudget(address) => {
                format!("attempts:familiar-address:{}", self.address(*address))
            }
        }
    }

    /// An account (as typed) and a client address together, as the keys name them.
    fn pair(&self, identifier: &str, address: IpAddr) -> String {
        self.keyed("familiar", &format!("{}\0{identifier}", client(address)))
    }

    /// An identifier as typed, as the keys name it.
    fn tag(&self, identifier: &str) -> String {
        self.keyed("throttle", identifier)
    }

    /// `value` as a key names it: a keyed tag for `purpose`, never the text.
    fn keyed(&self, purpose: &str, value: &str) -> String {
        let mut tag = self.tags.tag(purpose, value);
        tag.truncate(32);
        tag
    }

    /// A client address as the keys name it: a keyed tag, as for identifiers
    /// (the store's key names are no list of who came from where).
    fn address(&self, address: IpAddr) -> String {
        self.keyed("throttle-address", &client(address))
    }

    /// The count of an address's failed client authentications.
    fn client_auth_key(&self, address: IpAddr) -> String {
        format!("client-auth:address:{}", self.address(address))
    }

    /// Counts an attempt under `key` by `rule`, then says whether it may go on.
    async fn pass(&self, key: &str, rule: &Backoff, now_ms: i64) -> anyhow::Result<Gate> {
        Ok(match self.store.attempt(key, rule, now_ms).await? {
            Attempt::Refused { retry_after } => Gate::Closed {
                retry_after: retry_after.max(1),
            },
            Attempt::Admitted { .. } => Gate::Open,
        })
    }

    /// Counts a recovery request from `address`, then says whether it may proceed.
    pub async fn enter_recovery(&self, address: IpAddr, now_ms: i64) -> anyhow::Result<Gate> {
        let key = format!("recovery:address:{}", self.address(address));
        self.pass(&key, &RECOVERY_PER_ADDRESS, now_ms).await
    }

    /// Whether `address` is held back after too many failed client
    /// authentications (see [`CLIENT_AUTH_PER_ADDRESS`]); counts nothing.
    pub async fn client_auth_gate(&self, address: IpAddr, now_ms: i64) -> anyhow::Result<Gate> {
        let held = self
            .store
            .held_back(
                &self.client_auth_key(address),
                &CLIENT_AUTH_PER_ADDRESS,
                now_ms,
            )
            .await?;
        Ok(match held {
            Some(retry_after) => Gate::Closed { retry_after },
            None => Gate::Open,
        })
    }

    /// Counts a failed client authentication from `address`; past the limit,
    /// the address is held back (`client_auth_gate`), and so is this one.
    pub async fn client_auth_failed(&self, address: IpAddr, now_ms: i64) -> anyhow::Result<Gate> {
        self.pass(
            &self.client_auth_key(address),
            &CLIENT_AUTH_PER_ADDRESS,
            now_ms,
        )
        .await
    }

    /// Counts a reset SMS about to go to a stranger of `address` (see
    /// [`SMS_PER_ADDRESS`], and [`SMS_PER_NETWORK`] for IPv6), then says
    /// whether it may go. One the network's count holds back is given back
    /// to the address's.
    pub async fn send_sms_from(&self, address: IpAddr, now_ms: i64) -> anyhow::Result<Gate> {
        let key = format!("recovery:sms-address:{}", self.address(address));
        let gate = self.pass(&key, &SMS_PER_ADDRESS, now_ms).await?;
        let Some(network) = network(address).filter(|_| gate == Gate::Open) else {
            return Ok(gate);
        };
        let network_key = format!(
            "recovery:sms-network:{}",
            self.keyed("throttle-network", &network)
        );
        let network_gate = self.pass(&network_key, &SMS_PER_NETWORK, now_ms).await?;
        if network_gate != Gate::Open {
            self.store.refund(&key).await?;
        }
        Ok(network_gate)
    }

    /// Counts an attempt on the account `identifier`, then says whether it
    /// may be checked.
    pub async fn enter(
        &self,
        identifier: &str,
        origin: &Origin,
        now_ms: i64,
    ) -> anyhow::Result<Admission> {
        if let Some(device) = &origin.device {
            let key = self.key(&Counter::Device(device));
            return Ok(self.pass(&key, &PER_DEVICE, now_ms).await?.into());
        }
        let address = self.key(&Counter::Address(origin.address));
        let account = self.key(&Counter::Account(identifier));
        match self.pass(&address, &PER_ADDRESS, now_ms).await? {
            Gate::Open => {
                let gate = self.pass(&account, &PER_ACCOUNT, now_ms).await?;
                // An attempt the account's delay refuses is not checked: the
                // address gets it back, so a pupil clicking on a delayed
                // account does not spend the whole room's budget.
                if gate != Gate::Open {
                    self.store.refund(&address).await?;
                }
                Ok(gate.into())
            }
            Gate::Closed { retry_after } => {
                let closed = Admission::Closed { retry_after };
                let familiar = self.key(&Counter::Familiar(identifier, origin.address));
                if self.store.get(&familiar).await?.is_none() {
                    return Ok(closed);
                }
                // The account's count there first: an attempt its delay
                // refuses leaves the address's budget as it was.
                let pair = self.key(&Counter::FamiliarAttempts(identifier, origin.address));
                if self.pass(&pair, &PER_ACCOUNT, now_ms).await? != Gate::Open {
                    return Ok(closed);
                }
                let budget = self.key(&Counter::FamiliarBudget(origin.address));
                if self.pass(&budget, &FAMILIAR_PER_ADDRESS, now_ms).await? != Gate::Open {
                    self.store.refund(&pair).await?;
                    return Ok(closed);
                }
                Ok(Admission::RightOnly { retry_after })
            }
        }
    }

    /// Counts a birth date typed for the account `identifier` (see
    /// [`BIRTH_DATES`]), then says whether it may be checked.
    pub async fn enter_birth_date(&self, identifier: &str, now_ms: i64) -> anyhow::Result<Gate> {
        let key = self.key(&Counter::BirthDate(identifier));
        self.pass(&key, &BIRTH_DATES, now_ms).await
    }

    /// How long the account `identifier`'s birth dates are held back (see
    /// [`BIRTH_DATES`]), if they are; counts nothing. Told before any other
    /// wait: once the count is spent, a shorter one would only promise a
    /// check that will not come.
    pub async fn birth_dates_held_back(
        &self,
        identifier: &str,
        now_ms: i64,
    ) -> anyhow::Result<Option<u64>> {
        let key = self.key(&Counter::BirthDate(identifier));
        self.store.held_back(&key, &BIRTH_DATES, now_ms).await
    }

    /// Counts a confirmation mail asked for the account `account_id` to
    /// `address` (see [`CONFIRMATION_MAILS`]), then says whether it may be
    /// sent. One held back by the address's count is given back to the
    /// account's.
    pub async fn enter_confirmation_mail(
        &self,
        account_id: &str,
        address: &str,
        now_ms: i64,
    ) -> anyhow::Result<Gate> {
        let account = self.key(&Counter::ConfirmationMail(account_id));
        if let closed @ Gate::Closed { .. } =
            self.pass(&account, &CONFIRMATION_MAILS, now_ms).await?
        {
            return Ok(closed);
        }
        let recipient = self.key(&Counter::ConfirmationMailTo(&address.to_lowercase()));
        let gate = self.pass(&recipient, &CONFIRMATION_MAILS, now_ms).await?;
        if gate != Gate::Open {
            self.store.refund(&account).await?;
        }
        Ok(gate)
    }

    /// The account's owner proved control of it (a password reset): its delay ends.
    pub async fn forgive(&self, identifier: &str) -> anyhow::Result<()> {
        self.store
            .delete(&self.key(&Counter::Account(identifier)))
            .await
    }

    /// The birth date was right: its count starts again.
    pub async fn birth_date_right(&self, identifier: &str) -> anyhow::Result<()> {
        self.store
            .delete(&self.key(&Counter::BirthDate(identifier)))
            .await
    }

    /// The attempt `admitted` let through was right: its counters start
    /// again (the address's count, or its budget while locked, gives back
    /// this one attempt), and the address is familiar to the account for
    /// [`FAMILIAR_FOR`].
    pub async fn succeeded(
        &self,
        identifier: &str,
        origin: &Origin,
        admitted: Admission,
    ) -> anyhow::Result<()> {
        let familiar = self.key(&Counter::Familiar(identifier, origin.address));
        let mark = self.store.put(&familiar, "1", FAMILIAR_FOR);
        let (counted, given_back) = match (&origin.device, admitted) {
            (Some(device), _) => (Counter::Device(device), None),
            (None, Admission::RightOnly { .. }) => (
                Counter::FamiliarAttempts(identifier, origin.address),
                Some(Counter::FamiliarBudget(origin.address)),
            ),
            (None, _) => (
                Counter::Account(identifier),
                Some(Counter::Address(origin.address)),
            ),
        };
        let give_back = async {
            match given_back {
                Some(counter) => self.store.refund(&self.key(&counter)).await,
                None => Ok(()),
            }
        };
        let counted = self.key(&counted);
        tokio::try_join!(mark, self.store.delete(&counted), give_back)?;
        Ok(())
    }
}

/// A wait as people read it: « 40 secondes », « 3 minutes », « 24 heures ».
pub fn french_wait(seconds: u64) -> String {
    match seconds {
        0..=1 => "1 seconde".into(),
        2..=59 => format!("{seconds} secondes"),
        60 => "1 minute".into(),
        61..=3600 => format!("{} minutes", seconds.div_ceil(60)),
        _ => format!("{} heures", seconds.div_ceil(3600)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> (tempfile::TempDir, Throttle) {
        let dir = tempfile::tempdir().unwrap();
        let tags = DeviceKey::load_or_generate(dir.path()).unwrap();
        (dir, Throttle::new(ShortLived::memory(), tags))
    }

    /// IPv6 clients count by /64; IPv4 clients behind a translator by their
    /// own IPv4 address, not all together as one /64.
    #[test]
    fn an_ipv4_client_behind_nat64_counts_as_itself() {
        let of = |a: &str| client(a.parse().unwrap());
        assert_eq!(of("2001:db8:1:2:aaaa::1"), of("2001:db8:1:2:bbbb::2"));
        assert_eq!(of("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(of("64:ff9b::192.0.2.1"), "192.0.2.1");
        assert_ne!(of("64:ff9b::192.0.2.1"), of("64:ff9b::192.0.2.2"));
        assert_eq!(of("::ffff:192.0.2.1"), of("192.0.2.1"));
    }

    #[test]
    fn the_store_never_holds_the_identifier_typed() {
        let (_dir, throttle) = throttle();
        let typed = "xk7-mot-de-passe";
        for counter in [Counter::Account(typed), Counter::BirthDate(typed)] {
            let key = throttle.key(&counter);
            assert!(!key.contains(typed), "{key}");
            assert_eq!(key, throttle.key(&counter), "the same text, the same key");
        }
        assert_ne!(
            throttle.key(&Counter::Account(typed)),
            throttle.key(&Counter::Account("xk7-mot-de-passf"))
        );
    }

    #[tokio::test]
    async fn a_trusted_browser_passes_while_the_account_is_delayed() {
        let (_dir, throttle) = throttle();
        let attacker = Origin {
            address: "203.0.113.7".parse().unwrap(),
            device: None,
        };
        let now = 1_800_000_000_000;
        for _ in 0..PER_ACCOUNT.free {
            assert_eq!(
                throttle
                    .enter("marie.martin", &attacker, now)
                    .await
                    .unwrap(),
                Admission::Open
            );
        }
        assert_eq!(
            throttle
                .enter("marie.martin", &attacker, now)
                .await
                .unwrap(),
            Admission::Closed { retry_after: 2 }
        );
        // Each delay runs from its attempt, to the millisecond (counted in
        // whole seconds, a seventh attempt passed as early as 3 s after a
        // sixth made late in its second).
        let sixth = now + 2_000;
        assert_eq!(
            throttle
                .enter("marie.martin", &attacker, sixth)
                .await
                .unwrap(),
            Admission::Open
        );
        for (after, retry_after) in [(1_200, 3), (3_999, 1)] {
            assert_eq!(
                throttle
                    .enter("marie.martin", &attacker, sixth + after)
                    .await
                    .unwrap(),
                Admission::Closed { retry_after },
                "{after} ms after the sixth attempt"
            );
        }
        assert_eq!(
            throttle
                .enter("marie.martin", &attacker, sixth + 4_000)
                .await
                .unwrap(),
            Admission::Open
        );
        let parent = Origin {
            device: Some(TrustedDevice::for_tests("n0nce")),
            ..attacker.clone()
        };
        assert_eq!(
            throttle.enter("marie.martin", &parent, now).await.unwrap(),
            Admission::Open
        );
    }

    #[tokio::test]
    async fn attempts_a_delayed_account_refuses_leave_the_address_budget_whole() {
        let (_dir, throttle) = throttle();
        let room = Origin {
            address: "203.0.113.7".parse().unwrap(),
            device: None,
        };
        let now = 1_800_000_000_000;
        let mut refused = 0;
        for _ in 0..PER_ADDRESS.free {
            if throttle.enter("lea.martin", &room, now).await.unwrap() != Admission::Open {
                refused += 1;
            }
        }
        assert_eq!(refused, PER_ADDRESS.free - PER_ACCOUNT.free);
        // The room's other pupils: five attempts were checked, 95 left.
        for n in 0..(PER_ADDRESS.free - PER_ACCOUNT.free) {
            assert_eq!(
                throttle
                    .enter(&format!("eleve.{n}"), &room, now)
                    .await
                    .unwrap(),
                Admission::Open,
                "attempt {n}"
            );
        }
        assert_ne!(
            throttle.enter("eleve.x", &room, now).await.unwrap(),
            Admission::Open,
            "then the address's limit"
        );
    }

    /// An address locked by attempts on made-up accounts: an account signed
    /// in to from it is still checked (on its own count), others wait; the
    /// familiarity is the account's and the address's together.
    #[tokio::test]
    async fn a_locked_address_still_checks_the_accounts_signed_in_from_it() {
        let (_dir, throttle) = throttle();
        let school = Origin {
            address: "203.0.113.7".parse().unwrap(),
            device: None,
        };
        let home = Origin {
            address: "198.51.100.1".parse().unwrap(),
            device: None,
        };
        let now = 1_800_000_000_000;
        throttle
            .succeeded("lea.martin", &school, Admission::Open)
            .await
            .unwrap();
        throttle
            .succeeded("paul.martin", &home, Admission::Open)
            .await
            .unwrap();
        let pupils: Vec<String> = (0..=FAMILIAR_PER_ADDRESS.free - PER_ACCOUNT.free + 1)
            .map(|n| format!("eleve.{n}"))
            .collect();
        for pupil in &pupils {
            throttle
                .succeeded(pupil, &school, Admission::Open)
                .await
                .unwrap();
        }
        for n in 0..PER_ADDRESS.free {
            let admitted = throttle.enter(&format!("x{n}"), &school, now).await;
            assert_eq!(admitted.unwrap(), Admission::Open, "attempt {n}");
        }
        let lock = Admission::Closed {
            retry_after: PER_ADDRESS.first_delay,
        };
        for (identifier, from) in [("inconnu", &school), ("paul.martin", &school)] {
            let admitted = throttle.enter(identifier, from, now).await.unwrap();
            assert_eq!(admitted, lock, "{identifier}");
        }
        let right_only = Admission::RightOnly {
            retry_after: PER_ADDRESS.first_delay,
        };
        for _ in 0..PER_ACCOUNT.free {
            let admitted = throttle.enter("lea.martin", &school, now).await.unwrap();
            assert_eq!(admitted, right_only);
        }
        let admitted = throttle.enter("lea.martin", &school, now).await.unwrap();
        assert_eq!(admitted, lock, "then a delay of her own at the school");
        // Counted on a count of her account at the school: from elsewhere,
        // nothing tells that she is known there.
        let phone = Origin {
            address: "192.0.2.44".parse().unwrap(),
            device: None,
        };
        let admitted = throttle.enter("lea.martin", &phone, now).await.unwrap();
        assert_eq!(admitted, Admission::Open);

        // The locked address's attempts on familiar accounts are bounded in
        // all, however many accounts were signed in to from it.
        // A right password gives its attempt back to the budget.
        let (first, others) = pupils.split_first().unwrap();
        let admitted = throttle.enter(first, &school, now).await.unwrap();
        assert_eq!(admitted, right_only);
        throttle.succeeded(first, &school, admitted).await.unwrap();
        let (last, others) = others.split_last().unwrap();
        for pupil in others {
            let admitted = throttle.enter(pupil, &school, now).await.unwrap();
            assert_eq!(admitted, right_only, "{pupil}");
        }
        let admitted = throttle.enter(last, &school, now).await.unwrap();
        assert_eq!(admitted, lock, "the address's budget spent");
    }

    #[tokio::test]
    async fn birth_dates_are_counted_apart_and_a_sign_in_does_not_clear_them() {
        let (_dir, throttle) = throttle();
        let holder = Origin {
            address: "203.0.113.7".parse().unwrap(),
            device: Some(TrustedDevice::for_tests("n0nce")),
        };
        let now = 1_800_000_000_000;
        for _ in 0..BIRTH_DATES.free {
            assert_eq!(
                throttle
                    .enter_birth_date("marc.baillet", now)
                    .await
                    .unwrap(),
                Gate::Open
            );
        }
        throttle
            .succeeded("marc.baillet", &holder, Admission::Open)
            .await
            .unwrap();
        assert_eq!(
            throttle
                .enter_birth_date("marc.baillet", now + 60_000)
                .await
                .unwrap(),
            Gate::Closed {
                retry_after: 24 * 3600 - 60
            }
        );
        throttle.birth_date_right("marc.baillet").await.unwrap();
        assert_eq!(
            throttle
                .enter_birth_date("marc.baillet", now + 60_000)
                .await
                .unwrap(),
            Gate::Open
        );
    }

    /// Five confirmation mails an hour to one address, whatever the accounts
    /// asking; one held back there spends nothing of its account's five.
    #[tokio::test]
    async fn confirmation_mails_are_counted_per_account_and_per_address() {
        let (_dir, throttle) = throttle();
        let now = 1_700_000_000_000;
        for _ in 0..5 {
            let gate = throttle.enter_confirmation_mail("a", "victim@example.net", now);
            assert_eq!(gate.await.unwrap(), Gate::Open);
        }
        for address in ["victim@example.net", "Victim@Example.NET"] {
            let gate = throttle.enter_confirmation_mail("b", address, now);
            assert!(matches!(gate.await.unwrap(), Gate::Closed { .. }));
        }
        for n in 0..5 {
            let address = format!("own{n}@example.net");
            let gate = throttle.enter_confirmation_mail("b", &address, now);
            assert_eq!(gate.await.unwrap(), Gate::Open, "b's own mail {n}");
        }
        let gate = throttle.enter_confirmation_mail("b", "own9@example.net", now);
        assert!(matches!(gate.await.unwrap(), Gate::Closed { .. }));
    }

    /// The store's key names carry no client address, nor any identifier
    /// typed: keyed tags, the same for the same client.
    #[test]
    fn keys_name_addresses_and_identifiers_by_tags() {
        let (_dir, throttle) = throttle();
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        let v6: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let keys = [
            throttle.key(&Counter::Address(v4)),
            throttle.key(&Counter::Address(v6)),
            throttle.key(&Counter::Account("claire.martin")),
            throttle.client_auth_key(v4),
        ];
        for key in &keys {
            for clear in ["203.0.113", "2001:db8", "claire"] {
                assert!(!key.contains(clear), "{key}");
            }
        }
        assert_eq!(
            keys[1],
            throttle.key(&Counter::Address("2001:db8:1:2:bbbb::9".parse().unwrap()))
        );
        assert_ne!(
            keys[0],
            throttle.key(&Counter::Address("203.0.113.8".parse().unwrap()))
        );
    }

    /// Five reset SMS an hour per /64, twenty per IPv6 /48: a network cannot
    /// spend the day's budget from each of its /64s in turn. IPv4 clients
    /// have their address's count only.
    #[tokio::test]
    async fn reset_sms_are_counted_per_address_and_per_ipv6_network() {
        let (_dir, throttle) = throttle();
        let now = 1_700_000_000_000;
        let from = |n: u16| -> IpAddr { format!("2001:db8:7:{n:x}::1").parse().unwrap() };
        let mut sent = 0;
        for n in 0..10 {
            for _ in 0..5 {
                if throttle.send_sms_from(from(n), now).await.unwrap() == Gate::Open {
                    sent += 1;
                }
            }
        }
        assert_eq!(sent, 20, "the /48's twenty");
        // Another /48 is not concerned.
        let elsewhere: IpAddr = "2001:db8:8::1".parse().unwrap();
        assert_eq!(
            throttle.send_sms_from(elsewhere, now).await.unwrap(),
            Gate::Open
        );
        assert_eq!(network("192.0.2.1".parse().unwrap()), None);
        assert_eq!(network("::ffff:192.0.2.1".parse().unwrap()), None);
        assert_eq!(
            network("2001:db8:7:9::1".parse().unwrap()).as_deref(),
            Some("2001:db8:7::/48")
        );
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let a = client("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = client("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = client("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn waits_read_naturally() {
        assert_eq!(french_wait(1), "1 seconde");
        assert_eq!(french_wait(40), "40 secondes");
        assert_eq!(french_wait(60), "1 minute");
        assert_eq!(french_wait(61), "2 minutes");
        assert_eq!(french_wait(121), "3 minutes");
        assert_eq!(french_wait(3600), "60 minutes");
        assert_eq!(french_wait(3601), "2 heures");
        assert_eq!(french_wait(24 * 3600 - 60), "24 heures");
    }
}
