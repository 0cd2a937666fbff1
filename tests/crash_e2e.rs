//! Crash safety of the worklist database.
//!
//! (a) `kill -9` of `mwlbridge sync --once` during a big cycle (5,000 bookings, then
//! thousands changed), aimed at the fetch, at the first write to the `-wal` file (plus a
//! random delay), and at random offsets after the last Calpendo request: after each kill
//! the database, reopened, holds exactly the state before the cycle or the state after a
//! complete one (both taken with clean `sync --once` runs), never a mix.
//!
//! (b) Queries during churn: `serve` syncs every second while a thread adds, moves,
//! retitles, cancels and removes bookings in the fake Calpendo between cycles, for 100
//! cycles, and two clients (the Rust client and DCMTK's findscu) query continuously:
//! every query succeeds, and every response set is exactly the worklist of one state the
//! bookings were in.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calpendo_fake::{FakeBooking, FakeCalpendo, Stats, synthetic_bookings};
use common::dicom_client::{Client, Split, identifier};
use common::harness::{
    ITEM_KEYS, Item, entries, item_of, items, runtime, start_fake, write_config,
};
use common::scp::{AE, findscu};
use common::serve::{Serve, ServeOpts, USER, runs};
use common::{booking, stderr, stdout, today};
use dicom_core::VR;
use dicom_dictionary_std::tags;
use jiff::Timestamp;
use worklist_store::{StatusSetBy, Store, SyncOutcome, WorklistEntry, format_da, format_tm};

const PASSWORD: &str = "Crash-pw_4tR8mWq";

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn seed() -> u64 {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    eprintln!("random seed {s}");
    s
}

// ---------------------------------------------------------------------------------------
// (a) kill -9 during a sync

/// The stored worklist without the store's timestamps: each entry's values and who set
/// its status, by booking id.
type State = Vec<(WorklistEntry, StatusSetBy)>;

fn state(db: &Path) -> State {
    let mut v: State = entries(db)
        .into_iter()
        .map(|s| (s.entry, s.meta.status_set_by))
        .collect();
    v.sort_by(|a, b| a.0.source_record_id.cmp(&b.0.source_record_id));
    v
}

/// How many entries of `got` differ from `reference` (missing, extra or changed).
fn differing(got: &State, reference: &State) -> usize {
    let a: BTreeMap<&str, &(WorklistEntry, StatusSetBy)> = got
        .iter()
        .map(|e| (e.0.source_record_id.as_str(), e))
        .collect();
    let b: BTreeMap<&str, &(WorklistEntry, StatusSetBy)> = reference
        .iter()
        .map(|e| (e.0.source_record_id.as_str(), e))
        .collect();
    let mut n = 0;
    for (k, v) in &a {
        if b.get(k) != Some(v) {
            n += 1;
        }
    }
    n + b.keys().filter(|k| !a.contains_key(*k)).count()
}

const BOOKINGS: usize = 5_000;
/// Rolling window long enough for the synthetic bookings (about 40 a day).
const CRASH_SOURCE: &str =
    "max_workers = 8\nwindow_future_days = 200\nrequest_timeout = 10\nsync_deadline = 300";

/// Thousands of changes: 30% retitled, 10% moved by 15 minutes, 5% cancelled, 5% removed,
/// and 300 new bookings.
fn changed(bookings: &[FakeBooking]) -> Vec<FakeBooking> {
    let mut out = Vec::with_capacity(bookings.len() + 300);
    for (i, b) in bookings.iter().enumerate() {
        let mut b = b.clone();
        match i % 20 {
            0..6 => b.title = format!("{}-v2", b.title),
            6 | 7 => {
                b.start += jiff::Span::new().minutes(15);
                b.end += jiff::Span::new().minutes(15);
            }
            8 => b.status = "Cancelled".into(),
            9 => continue,
            _ => {}
        }
        out.push(b);
    }
    for (j, mut b) in synthetic_bookings(300, today(), 77).into_iter().enumerate() {
        b.id = 900_000 + j as i64;
        out.push(b);
    }
    out
}

fn sync_once(config: &Path) -> Command {
    let mut cmd = common::command(&[
        "sync",
        "--once",
        "--config",
        config.to_str().expect("utf-8"),
    ]);
    cmd.env("CALPENDO_USERNAME", USER)
        .env("CALPENDO_PASSWORD", PASSWORD);
    cmd
}

fn wal_len(db: &Path) -> u64 {
    std::fs::metadata(format!("{}-wal", db.display()))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// Where a kill is aimed.
#[derive(Debug, Clone, Copy)]
enum Aim {
    /// Once this share of the booking details has been requested.
    Fetch(f64),
    /// This long after the `-wal` file first grows (the reconcile writes).
    Wal(Duration),
    /// Once the `-wal` file holds this many bytes (the commit writes the last frames).
    WalSize(u64),
    /// This long after the last Calpendo request of the cycle.
    AfterFetch(Duration),
}

/// What a killed run left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Left {
    Before,
    After,
}

struct Crash<'a> {
    dir: &'a Path,
    fake: &'a FakeCalpendo,
    before_db: &'a Path,
    before: &'a State,
    after: &'a State,
    expected: Stats,
}

impl Crash<'_> {
    /// One `sync --once` on a copy of the database before the cycle, killed (SIGKILL) at
    /// `aim`; what the reopened database holds. `None` when the process finished first.
    fn run(&self, i: usize, aim: Aim) -> Option<(Left, u64)> {
        let db = self.dir.join(format!("work-{i}.db"));
        std::fs::copy(self.before_db, &db).expect("copy the database");
        let config = write_config(
            &self.dir.join(format!("work-{i}.toml")),
            &self.fake.base_url(),
            &db,
            CRASH_SOURCE,
        );
        self.fake.reset_stats();
        let mut child = sync_once(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut armed: Option<Instant> = None;
        let wal_at_kill;
        loop {
            if child.try_wait().expect("try_wait").is_some() {
                eprintln!("run {i} {aim:?}: finished before the kill");
                return None;
            }
            let now = Instant::now();
            let fire = match aim {
                Aim::Fetch(share) => {
                    self.fake.stats().detail_requests as f64
                        >= share * self.expected.detail_requests as f64
                }
                Aim::Wal(delay) => {
                    if armed.is_none() && wal_len(&db) > 0 {
                        armed = Some(now);
                    }
                    armed.is_some_and(|at| now >= at + delay)
                }
                Aim::WalSize(bytes) => wal_len(&db) >= bytes,
                Aim::AfterFetch(delay) => {
                    if armed.is_none() && self.fake.stats().requests >= self.expected.requests {
                        armed = Some(now);
                    }
                    armed.is_some_and(|at| now >= at + delay)
                }
            };
            if fire {
                wal_at_kill = wal_len(&db);
                child.kill().expect("kill -9");
                child.wait().expect("wait");
                break;
            }
            assert!(
                now < deadline,
                "run {i}: the sync neither finished nor got killed"
            );
            std::thread::sleep(Duration::from_micros(200));
        }

        // Restart: the database opens (recovering from the WAL) and holds one whole state.
        let got = state(&db);
        let left = if &got == self.before {
            Left::Before
        } else if &got == self.after {
            Left::After
        } else {
            panic!(
                "run {i} {aim:?}: the database holds a mix: {} entries differ from the state \
                 before the cycle, {} from the state after it (wal was {wal_at_kill} bytes)",
                differing(&got, self.before),
                differing(&got, self.after)
            );
        };
        // A successful run is recorded only after its reconcile committed.
        let recorded = runs(&db)
            .iter()
            .filter(|r| r.outcome == SyncOutcome::Success)
            .count();
        assert!(
            recorded == 1 || left == Left::After,
            "run {i}: a recorded success but the state before the cycle"
        );
        // The worklist command reads it too.
        let out = common::command(&[
            "worklist",
            "--config",
            config.to_str().expect("utf-8"),
            "--date",
            "all",
            "--json",
        ])
        .output()
        .expect("worklist runs");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(listed.as_array().map(Vec::len), Some(got.len()));
        // After a kill that left the state before, the next cycle completes it.
        if i == 4 && left == Left::Before {
            let out = sync_once(&config).output().expect("sync runs");
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            assert!(
                &state(&db) == self.after,
                "run {i}: the resync did not complete the cycle"
            );
            eprintln!("run {i}: resynced after the kill: the state after the cycle");
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        eprintln!("run {i} {aim:?}: killed, wal {wal_at_kill} bytes: {left:?}");
        Some((left, wal_at_kill))
    }
}

#[test]
fn kill_9_during_a_sync_leaves_the_state_before_or_after_the_cycle() {
    let rt = runtime();
    let initial = synthetic_bookings(BOOKINGS, today(), 2026);
    let fake = start_fake(&rt, PASSWORD, initial.clone());
    let tmp = tempfile::Builder::new()
        .prefix("mwlbridge-crash-")
        .tempdir()
        .expect("tempdir");
    let dir = tmp.path();

    // The state before: a clean first sync.
    let before_db = dir.join("before.db");
    let config = write_config(
        &dir.join("before.toml"),
        &fake.base_url(),
        &before_db,
        CRASH_SOURCE,
    );
    let clock = Instant::now();
    let out = sync_once(&config).output().expect("sync runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    eprintln!(
        "first sync of {BOOKINGS} bookings: {:?}: {}",
        clock.elapsed(),
        stdout(&out).trim()
    );
    let before = state(&before_db);
    assert!(before.len() > 4_000, "{} entries", before.len());

    // The state after: a clean cycle with the changed bookings, on a copy. It also
    // measures the cycle: its requests, and how long the end takes after the last one.
    fake.set_bookings(changed(&initial));
    let after_db = dir.join("after.db");
    std::fs::copy(&before_db, &after_db).expect("copy");
    let config = write_config(
        &dir.join("after.toml"),
        &fake.base_url(),
        &after_db,
        CRASH_SOURCE,
    );
    fake.reset_stats();
    let clock = Instant::now();
    let mut child = sync_once(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut last = (0, Instant::now());
    let mut wal_grew: Option<Instant> = None;
    let mut wal_max = 0;
    while child.try_wait().expect("try_wait").is_none() {
        let n = fake.stats().requests;
        if n != last.0 {
            last = (n, Instant::now());
        }
        let wal = wal_len(&after_db);
        if wal_grew.is_none() && wal > 0 {
            wal_grew = Some(Instant::now());
        }
        wal_max = wal_max.max(wal);
        std::thread::sleep(Duration::from_micros(200));
    }
    let ended = Instant::now();
    let out = child.wait_with_output().expect("output");
    assert_eq!(out.status.code(), Some(0));
    let expected = fake.stats();
    let tail = ended - last.1;
    eprintln!(
        "changed cycle: {:?} in all, {tail:?} after the last of {} requests (wal first grew \
         {:?} before the end, up to {wal_max} bytes): {}",
        clock.elapsed(),
        expected.requests,
        wal_grew.map(|w| ended - w),
        stdout(&out).trim()
    );
    let after = state(&after_db);
    assert!(differing(&after, &before) > 2_000);

    let crash = Crash {
        dir,
        fake: &fake,
        before_db: &before_db,
        before: &before,
        after: &after,
        expected,
    };
    let mut rng = Rng(seed());
    let mut aims = vec![
        Aim::Fetch(0.05),
        Aim::Fetch(0.5),
        Aim::Fetch(0.95),
        Aim::Wal(Duration::ZERO),
    ];
    // As close to the commit as polling gets: the wal reaching most of its final size.
    for percent in [50, 90, 98, 99, 100] {
        aims.push(Aim::WalSize(wal_max * percent / 100));
    }
    let wal_us = wal_grew.map_or(1000, |w| (ended - w).as_micros().max(1000) as u64);
    for _ in 0..2 {
        aims.push(Aim::Wal(Duration::from_micros(rng.below(wal_us * 3 / 4))));
    }
    let tail_us = tail.as_micros().max(1000) as u64;
    for _ in 0..2 {
        aims.push(Aim::AfterFetch(Duration::from_micros(
            rng.below(tail_us * 3 / 4),
        )));
    }
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut wal_nonempty_before = 0;
    let clock = Instant::now();
    for (i, aim) in aims.into_iter().enumerate() {
        let key = match crash.run(i, aim) {
            None => "finished before the kill".to_string(),
            Some((left, wal)) => {
                if left == Left::Before && wal > 32 {
                    wal_nonempty_before += 1;
                }
                let kind = match aim {
                    Aim::Fetch(_) => "fetch",
                    Aim::Wal(_) => "write (wal)",
                    Aim::WalSize(_) => "commit (wal size)",
                    Aim::AfterFetch(_) => "after fetch",
                };
                format!("{kind}: {left:?}")
            }
        };
        *tally.entry(key).or_default() += 1;
    }
    eprintln!(
        "kills in {:?}: {tally:?}; {wal_nonempty_before} killed with an uncommitted \
         transaction in the wal",
        clock.elapsed()
    );
    assert!(
        tally.keys().any(|k| k.starts_with("fetch")),
        "no kill during the fetch"
    );
    assert!(
        wal_nonempty_before > 0,
        "no kill while the reconcile transaction was being written"
    );
}

// ---------------------------------------------------------------------------------------
// (b) queries during churn

const CHURN_CYCLES: usize = 100;

/// The resources of the churned bookings and their ScheduledStationAETitle.
const RESOURCES: [(&str, &str); 4] = [
    ("3T Diagnostic", "MRI_3T"),
    ("7T Research", "MRI_7T"),
    ("EEG Lab Room A", "EEG_LAB"),
    ("Mock Scanner", "MOCK"),
];

/// The item a console sees for a booking, if it is offered (Approved → SCHEDULED).
fn expected_item(b: &FakeBooking) -> Option<Item> {
    if b.status != "Approved" {
        return None;
    }
    let (subject, name) = b.title.split_once('_').expect("a title with a subject");
    let (family, given) = name.split_once('_').expect("a title with a name");
    let ae = RESOURCES
        .iter()
        .find(|(r, _)| *r == b.resource)
        .map(|(_, ae)| ae.to_string())
        .expect("a known resource");
    Some((
        b.id.to_string(),
        subject.to_string(),
        format!("{family}^{given}"),
        format_da(b.start.date()),
        format_tm(b.start.time()),
        ae,
    ))
}

fn worklist_of(bookings: &BTreeMap<i64, FakeBooking>) -> Vec<Item> {
    let mut v: Vec<Item> = bookings.values().filter_map(expected_item).collect();
    v.sort();
    v
}

/// A churned booking: today or tomorrow, some hour between 7 and 19.
fn churn_booking(id: i64, version: u32, rng: &mut Rng) -> FakeBooking {
    let (resource, _) = RESOURCES[rng.below(4) as usize];
    let mut b = booking(id, &format!("SUB{id}_Fam{id}_V{version}"), resource, 7);
    move_booking(&mut b, rng);
    b
}

fn move_booking(b: &mut FakeBooking, rng: &mut Rng) {
    let day = if rng.below(4) == 0 {
        today().tomorrow().expect("tomorrow")
    } else {
        today()
    };
    let start = day.at(7 + rng.below(12) as i8, (rng.below(4) * 15) as i8, 0, 0);
    b.end = start + jiff::Span::new().minutes(45);
    b.start = start;
}

/// Changes one to three bookings; returns what was done.
fn churn(
    rng: &mut Rng,
    world: &mut BTreeMap<i64, FakeBooking>,
    next_id: &mut i64,
    version: &mut u32,
    fake: &FakeCalpendo,
) -> Vec<&'static str> {
    let mut done = Vec::new();
    for _ in 0..1 + rng.below(3) {
        *version += 1;
        let ids: Vec<i64> = world.keys().copied().collect();
        let pick = ids[rng.below(ids.len() as u64) as usize];
        let op = rng.below(5);
        match op {
            0 if world.len() < 60 => {
                let b = churn_booking(*next_id, *version, rng);
                *next_id += 1;
                fake.upsert_booking(b.clone());
                world.insert(b.id, b);
                done.push("add");
            }
            1 => {
                let b = world.get_mut(&pick).expect("booking");
                move_booking(b, rng);
                fake.upsert_booking(b.clone());
                done.push("move");
            }
            2 => {
                let b = world.get_mut(&pick).expect("booking");
                b.title = format!("SUB{pick}x{version}_Fam{pick}_V{version}");
                fake.upsert_booking(b.clone());
                done.push("retitle");
            }
            3 => {
                let b = world.get_mut(&pick).expect("booking");
                b.status = "Cancelled".into();
                fake.upsert_booking(b.clone());
                done.push("cancel");
            }
            _ if world.len() > 25 => {
                world.remove(&pick);
                assert!(fake.remove_booking(pick));
                done.push("remove");
            }
            _ => {
                let b = world.get_mut(&pick).expect("booking");
                b.title = format!("SUB{pick}y{version}_Fam{pick}_V{version}");
                fake.upsert_booking(b.clone());
                done.push("retitle");
            }
        }
    }
    done
}

/// Response sets seen, with how often.
type Seen = Arc<Mutex<HashMap<Vec<Item>, u64>>>;

fn record(seen: &Seen, mut set: Vec<Item>) {
    set.sort();
    *seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(set)
        .or_default() += 1;
}

#[test]
fn queries_during_churn_always_see_one_whole_state() {
    let rt = runtime();
    let mut rng = Rng(seed());
    let mut world: BTreeMap<i64, FakeBooking> = BTreeMap::new();
    for id in 1001..1041 {
        let b = churn_booking(id, 0, &mut rng);
        world.insert(id, b);
    }
    let fake = start_fake(&rt, PASSWORD, world.values().cloned().collect());
    let tmp = tempfile::Builder::new()
        .prefix("mwlbridge-churn-")
        .tempdir()
        .expect("tempdir");
    let db = tmp.path().join("worklist.db");
    let config = write_config(
        &tmp.path().join("churn.toml"),
        &fake.base_url(),
        &db,
        "sync_interval = 1\ndetail_refresh = 0\nrequest_timeout = 5\nsync_deadline = 10",
    );
    // Every state the bookings were in, in order.
    let history: Arc<Mutex<Vec<Vec<Item>>>> = Arc::new(Mutex::new(vec![worklist_of(&world)]));
    let serve = Serve::start(&config, &db, &ServeOpts::json(PASSWORD, "info"));
    let port = serve.port;
    // Queries start once the worklist is filled (before, it is empty: no booking state).
    let first = serve.next_run(Timestamp::UNIX_EPOCH, Duration::from_secs(30));
    assert_eq!(first.outcome, SyncOutcome::Success, "{:?}", first.error);
    let started = Timestamp::now();
    let clock = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Seen = Arc::default();
    let queries = Arc::new(AtomicU64::new(0));
    let findscu_queries = Arc::new(AtomicU64::new(0));

    // The Rust client: many C-FINDs per association, about 25 a second.
    let client = {
        let (stop, seen, queries) = (stop.clone(), seen.clone(), queries.clone());
        std::thread::spawn(move || {
            let q = identifier(
                &[
                    (tags::ACCESSION_NUMBER, VR::SH, ""),
                    (tags::PATIENT_ID, VR::LO, ""),
                    (tags::PATIENT_NAME, VR::PN, ""),
                ],
                Some(&[
                    (tags::SCHEDULED_PROCEDURE_STEP_START_DATE, VR::DA, ""),
                    (tags::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, ""),
                    (tags::SCHEDULED_STATION_AE_TITLE, VR::AE, ""),
                ]),
            );
            while !stop.load(Ordering::SeqCst) {
                let mut c = Client::connect(port, "CHURN", AE).expect("associate");
                for _ in 0..40 {
                    let id = c.message_id();
                    let r = c.find(&q, Split::OnePdu, id);
                    assert_eq!(
                        r.final_status(),
                        Some(0),
                        "C-FIND failed: {:04X?}",
                        r.statuses
                    );
                    assert!(
                        r.statuses[..r.statuses.len() - 1]
                            .iter()
                            .all(|s| *s == 0xFF00)
                    );
                    record(&seen, r.identifiers.iter().map(item_of).collect());
                    queries.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(40));
                }
                c.release();
            }
        })
    };
    // findscu: one association per query, back to back with a pause.
    let dcmtk = {
        let (stop, seen, queries) = (stop.clone(), seen.clone(), findscu_queries.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let r = findscu(port, &ITEM_KEYS, &[]);
                record(&seen, items(&r));
                queries.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(150));
            }
        })
    };

    // The churn: after each successful cycle, change one to three bookings.
    let store = loop {
        if let Ok(s) = Store::open(&db) {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let deadline = Instant::now() + Duration::from_secs(170);
    let mut next_id = 2000;
    let mut version = 0;
    let mut seen_runs = 0;
    let mut changes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut skipped = 0;
    let mut cycles = 0;
    while cycles < CHURN_CYCLES {
        assert!(
            Instant::now() < deadline,
            "only {cycles} cycles in time:\n{}",
            serve.log()
        );
        assert!(
            !client.is_finished() && !dcmtk.is_finished(),
            "a client failed"
        );
        let recent = store.recent_sync_runs(None, 100_000).expect("runs");
        if recent.len() == seen_runs {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        seen_runs = recent.len();
        let last = &recent[0];
        assert_eq!(last.outcome, SyncOutcome::Success, "{:?}", last.error);
        cycles = recent.iter().filter(|r| r.started_at >= started).count();
        // Change only well before the next cycle (it starts 1 s after this one ended).
        if (Timestamp::now() - last.finished_at).as_secs_f64() > 0.5 {
            skipped += 1;
            continue;
        }
        for op in churn(&mut rng, &mut world, &mut next_id, &mut version, &fake) {
            *changes.entry(op).or_default() += 1;
        }
        history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(worklist_of(&world));
    }
    stop.store(true, Ordering::SeqCst);
    client
        .join()
        .expect("the Rust client's queries all succeeded");
    dcmtk.join().expect("findscu's queries all succeeded");
    let elapsed = clock.elapsed();

    let failed = runs(&db)
        .iter()
        .filter(|r| r.outcome != SyncOutcome::Success)
        .count();
    assert_eq!(failed, 0, "failed cycles:\n{}", serve.log());
    let history = history.lock().unwrap_or_else(|e| e.into_inner());
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    let mut states_seen = std::collections::BTreeSet::new();
    for (set, n) in seen.iter() {
        let mut ids: Vec<&str> = set.iter().map(|i| i.0.as_str()).collect();
        ids.dedup();
        assert_eq!(
            ids.len(),
            set.len(),
            "duplicate items in a response: {set:?}"
        );
        match history.iter().position(|h| h == set) {
            Some(k) => {
                states_seen.insert(k);
            }
            None => {
                panic!("a response set ({n} times) matches no state the bookings were in: {set:?}")
            }
        }
    }
    let total = queries.load(Ordering::SeqCst) + findscu_queries.load(Ordering::SeqCst);
    eprintln!(
        "churn: {cycles} cycles survived in {elapsed:?}; {} changes {changes:?} over {} \
         states ({skipped} cycles left unchanged); {total} queries ({} Rust client, {} \
         findscu), all successful, {} distinct response sets, {} of the states seen",
        changes.values().sum::<usize>(),
        history.len(),
        queries.load(Ordering::SeqCst),
        findscu_queries.load(Ordering::SeqCst),
        seen.len(),
        states_seen.len()
    );
    assert!(total > 500, "only {total} queries");
}
