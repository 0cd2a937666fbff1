//! The admin status page in a real browser: the real `mwlbridge serve` fed by the fake
//! Calpendo, its `[admin]` interface on a free loopback port, a write token made with
//! `mwlbridge token create`, and headless Chromium driven through chromedriver
//! (WebDriver, `fantoccini`; see `common::browser`). What the page changes is checked
//! with DCMTK `findscu`, as a console would see it.
//!
//! Chromium and chromedriver are Debian's `chromium` and `chromium-driver` packages;
//! `scripts/test.sh` installs them. Without them these tests fail (they do not skip).
//!
//! They leave screenshots for people to look at (desktop 1200×900, phone 390×844):
//! `target/admin-page.png` and `target/admin-page-phone.png` (right after signing in),
//! `target/scan-day-desktop.png` and `target/scan-day-phone.png` (every status on the
//! page), `target/station-view.png` and `target/station-view-phone.png`, and
//! `target/stale-banner.png` (a source that keeps failing) and
//! `target/manual-entry-refused.png` (the manual-entry form refused, with a station picked).

mod common;

use std::time::{Duration, Instant};

use calpendo_fake::{FakeBooking, Fault, FaultScope};
use common::browser::{
    Driver, STEP, assert_fits_phone, attr, browser, browser_tools, click, exists, fill, pick,
    screenshot, sign_in, source, submit, target_dir, texts, wait_for_text,
};
use common::scp::{FindResult, Site, findscu, free_port, mwl_bookings, sps_item, text};
use common::{booking, today};
use dicom_dictionary_std::tags;
use fantoccini::{Client, Locator};
use worklist_store::format_da;

const SPS: &str = "ScheduledProcedureStepSequence[0]";

/// The fake's bookings: four today on three stations, one tomorrow (not on the page).
///
/// | id | patient ID | resource | station |
/// |---|---|---|---|
/// | 201 | PG201 | 3T | MRI_3T |
/// | 202 | PG202 | EEG | EEG_LAB |
/// | 203 | PG203 | 7T | MRI_7T |
/// | 204 | PG204 | 3T | MRI_3T |
/// | 208 | PG208 | 3T, tomorrow | MRI_3T |
fn bookings() -> Vec<FakeBooking> {
    let mut tomorrow = booking(208, "PG208_Doe_Tomorrow", "3T Diagnostic", 9);
    tomorrow.start = today().tomorrow().expect("tomorrow").at(9, 0, 0, 0);
    tomorrow.end = tomorrow.start + jiff::Span::new().hours(1);
    vec![
        booking(201, "PG201_Tremblay_Marie", "3T Diagnostic", 8),
        booking(202, "PG202_Novak_Jan", "EEG Lab Room A", 9),
        booking(203, "PG203_Leblanc_Annemarie", "7T Research", 10),
        booking(204, "PG204_Hebert_Zoe", "3T Diagnostic", 13),
        tomorrow,
    ]
}

/// A site with its admin interface, a write token, and a browser for it.
struct PageSite {
    site: Site,
    base: String,
    token: String,
    driver: Driver,
    chromium: std::path::PathBuf,
    _profile: tempfile::TempDir,
}

impl PageSite {
    /// `admin_keys` and `source_keys` are added to the `[admin]` and source tables.
    fn start(bookings: Vec<FakeBooking>, admin_keys: &str, source_keys: &str) -> PageSite {
        let (chromium, chromedriver) = browser_tools();
        let admin_port = free_port();
        let site = Site::start_with(
            bookings,
            &format!(
                "[admin]\nenabled = true\nbind = \"127.0.0.1\"\nport = {admin_port}\n{admin_keys}"
            ),
            source_keys,
        );
        let created = common::run(&[
            "token",
            "create",
            "--config",
            site.config().to_str().expect("utf-8 path"),
            "--name",
            "browser-e2e",
            "--role",
            "write",
        ]);
        assert!(
            created.status.success(),
            "token create: {}",
            common::stderr(&created)
        );
        let token = common::stdout(&created).trim().to_string();
        assert!(token.starts_with("mwlb_"), "token {token:?}");
        let profile = tempfile::Builder::new()
            .prefix("mwlbridge-chromium-")
            .tempdir()
            .expect("profile dir");
        let driver = Driver::start(&chromedriver, &site.dir);
        PageSite {
            base: format!("http://127.0.0.1:{admin_port}"),
            site,
            token,
            driver,
            chromium,
            _profile: profile,
        }
    }

    async fn browser(&self) -> Client {
        browser(&self.driver, &self.chromium, self._profile.path()).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `findscu` with today's date and `keys` (PatientID is always asked for).
    fn find_today(&self, keys: &[&str]) -> FindResult {
        let date = format!(
            "{SPS}.ScheduledProcedureStepStartDate={}",
            format_da(today())
        );
        let mut all = vec!["PatientID", &date];
        all.extend_from_slice(keys);
        let r = findscu(self.site.port(), &all, &[]);
        r.assert_success();
        r
    }

    /// The patient IDs a console's query for today gets when it names no status.
    fn offered_today(&self) -> Vec<String> {
        self.find_today(&[]).patient_ids()
    }
}

/// The patient IDs of the rows under one status's heading, sorted.
async fn ids_in(c: &Client, status: &str) -> Vec<String> {
    let mut ids = texts(
        c,
        &format!("section.status-group[data-status='{status}'] tr.entry td:nth-child(2)"),
    )
    .await;
    ids.sort();
    ids
}

/// Panics unless the page's "offered to consoles" count and the rows it lists as
/// scheduled or in progress are exactly what `offered` (findscu's answer) holds.
async fn assert_page_offers(c: &Client, offered: &[String]) {
    let count = attr(c, "#counts", "data-offered").await;
    assert_eq!(
        count.as_deref(),
        Some(offered.len().to_string().as_str()),
        "the page's count vs findscu's {offered:?}: {}",
        source(c).await
    );
    let mut listed = ids_in(c, "SCHEDULED").await;
    listed.extend(ids_in(c, "STARTED").await);
    listed.sort();
    assert_eq!(
        listed, offered,
        "scheduled and in progress on the page vs findscu"
    );
}

/// Presses a row's status button and waits for the page to say it is done.
async fn set_status(c: &Client, record: &str, status: &str) {
    click(
        c,
        &format!("tr.entry[data-record='{record}'] form[data-set='{status}'] button"),
    )
    .await;
    wait_for_text(c, "p.flash", "Status changed").await;
}

/// The current URL's path and query.
async fn path_of(c: &Client) -> String {
    let url = c.current_url().await.expect("url");
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// Reloads `url` until `css` is there (or, with `present` false, gone).
async fn reload_until(c: &Client, url: &str, css: &str, present: bool) {
    let deadline = Instant::now() + STEP;
    loop {
        c.goto(url).await.expect("reload");
        if exists(c, css).await == present {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{css:?} never {}: {}",
            if present { "appeared" } else { "went away" },
            source(c).await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[test]
fn the_status_page_works_in_a_real_browser() {
    let p = PageSite::start(bookings(), "", "");
    let today_da = format_da(today());
    let token = p.token.clone();

    p.site.block_on(async {
        let c = p.browser().await;

        // Signed out: the login form, and nothing about any subject.
        c.goto(&p.url("/")).await.expect("open /");
        c.find(Locator::Css("form[action='/login'] input[name='token']"))
            .await
            .expect("the login form");
        let html = source(&c).await;
        for secret in ["PG20", "Tremblay", "Novak", "MRI_3T", "EEG_LAB"] {
            assert!(
                !html.contains(secret),
                "{secret:?} on the login page:\n{html}"
            );
        }
        assert!(!exists(&c, "tr.entry").await);
        assert!(
            !exists(&c, "script").await,
            "the page works without JavaScript and has none"
        );

        // A wrong token is refused.
        fill(
            &c,
            "form[action='/login']",
            "token",
            "mwlb_000000000000_nope",
        )
        .await;
        submit(&c, "form[action='/login']").await;
        wait_for_text(&c, "p.errors", "not valid").await;
        assert!(c.get_named_cookie("mwlbridge_session").await.is_err());

        // Sign in with the write token.
        sign_in(&c, &p.base, &token).await;
        wait_for_text(&c, "#counts", "4 offered to consoles").await;
        let cookie = c
            .get_named_cookie("mwlbridge_session")
            .await
            .expect("session cookie");
        assert_eq!(cookie.http_only(), Some(true), "{cookie:?}");
        assert_eq!(
            format!("{:?}", cookie.same_site()),
            "Some(Strict)",
            "{cookie:?}"
        );
        assert!(
            !source(&c).await.contains(&token),
            "the token is never echoed into the page"
        );
        wait_for_text(&c, "div.who", "browser-e2e").await;

        // The day in the site's words, its DICOM date on hover.
        let heading = texts(&c, "h2").await;
        let day = today().strftime("%a %-d %b %Y").to_string();
        assert_eq!(
            heading.first(),
            Some(&format!("Today, {day}")),
            "{heading:?}"
        );
        assert_eq!(
            attr(&c, "h2", "title").await.as_deref(),
            Some(today_da.as_str())
        );

        // Every status apart; today's entries all scheduled, tomorrow's not there.
        assert_eq!(
            texts(&c, "section.status-group h3").await,
            [
                "Scheduled (4)",
                "In progress (0)",
                "Completed (0)",
                "Discontinued (0)"
            ],
            "{}",
            source(&c).await
        );
        assert_eq!(
            ids_in(&c, "SCHEDULED").await,
            ["PG201", "PG202", "PG203", "PG204"]
        );
        assert!(
            !source(&c).await.contains("PG208"),
            "tomorrow's entry shown"
        );

        // A row: time in 24 h with the DICOM values on hover, "Family, Given" with the
        // DICOM name on hover, a badge with the DICOM term on hover.
        let row = "tr.entry[data-record='201']";
        assert_eq!(texts(&c, &format!("{row} td.time")).await, ["08:00–09:00"]);
        assert_eq!(
            attr(&c, &format!("{row} td.time"), "title").await,
            Some(format!("start {today_da} 080000, end {today_da} 090000"))
        );
        assert_eq!(
            texts(&c, &format!("{row} td.name")).await,
            ["Tremblay, Marie"]
        );
        assert_eq!(
            attr(&c, &format!("{row} td.name"), "title")
                .await
                .as_deref(),
            Some("Tremblay^Marie")
        );
        assert_eq!(texts(&c, &format!("{row} .badge")).await, ["Scheduled"]);
        assert_eq!(
            attr(&c, &format!("{row} .badge"), "title").await.as_deref(),
            Some("SCHEDULED")
        );

        // A link to each station's view: the mapped stations and today's count.
        assert_eq!(
            texts(&c, "nav.stations a").await,
            ["EEG_LAB (1)", "MOCK (0)", "MRI_3T (2)", "MRI_7T (1)"]
        );

        // The source in one line: the last success and what it did; no stale banner.
        let line = texts(&c, "#sources li.source[data-source='calpendo']").await;
        let line = line.first().cloned().unwrap_or_default();
        assert!(line.starts_with("calpendo: last success "), "{line}");
        assert!(
            line.contains("(5 fetched: 5 new, 0 updated, 0 discontinued); syncs every 1 h."),
            "{line}"
        );
        assert!(!exists(&c, "p.stale").await);
        let success = "#sources li.source[data-source='calpendo'] time.last-success";
        let first_sync = attr(&c, success, "datetime").await.expect("datetime");
        assert!(
            first_sync.ends_with('Z'),
            "RFC 3339 UTC instant: {first_sync}"
        );

        screenshot(&c, &target_dir().join("admin-page.png")).await;

        // A manual entry with a bad date: the form again, at its own URL, with the field
        // at fault and what was typed; nothing is added.
        let form = "form[action='/manual']";
        assert!(
            !exists(&c, &format!("{form} input[name='modality']")).await,
            "the modality comes from the station"
        );
        fill(&c, form, "patient_id", "WALKBAD").await;
        fill(&c, form, "patient_name", "Bad^Date").await;
        fill(&c, form, "start_date", "2026-13-45").await;
        fill(&c, form, "start_time", "1130").await;
        pick(&c, form, "station_ae_title", "MRI_3T").await;
        submit(&c, form).await;
        let errors = wait_for_text(&c, "div.errors", "start_date").await;
        assert!(errors.contains("YYYYMMDD"), "{errors}");
        assert!(
            !errors.contains("start_time"),
            "only the date is wrong: {errors}"
        );
        assert_eq!(path_of(&c).await, "/manual");
        let kept = c
            .find(Locator::Css(&format!("{form} input[name='patient_id']")))
            .await
            .expect("field")
            .prop("value")
            .await
            .expect("value");
        assert_eq!(kept.as_deref(), Some("WALKBAD"));
        let picked = c
            .find(Locator::Css(&format!(
                "{form} select[name='station_ae_title']"
            )))
            .await
            .expect("station picker")
            .prop("value")
            .await
            .expect("value");
        assert_eq!(picked.as_deref(), Some("MRI_3T"));
        screenshot(&c, &target_dir().join("manual-entry-refused.png")).await;
        // Reloading the refused form's URL shows the form, not a bare 405.
        c.goto(&p.url("/manual")).await.expect("GET /manual");
        assert!(exists(&c, &format!("{form} select[name='station_ae_title']")).await);

        // A good one, on the station picked: it takes the station's modality, so an MR
        // console's query for its modality finds it.
        fill(&c, form, "patient_id", "WALKIN7").await;
        fill(&c, form, "patient_name", "Walker^Ina").await;
        fill(&c, form, "start_date", &today_da).await;
        fill(&c, form, "start_time", "1130").await;
        pick(&c, form, "station_ae_title", "MRI_3T").await;
        fill(&c, form, "sps_description", "Phantom QA").await;
        submit(&c, form).await;
        wait_for_text(&c, "p.flash", "Manual entry added").await;
        assert_eq!(
            ids_in(&c, "SCHEDULED").await,
            ["PG201", "PG202", "PG203", "PG204", "WALKIN7"]
        );
        let cells = texts(&c, "tr.entry[data-source='manual'] td").await;
        assert_eq!(
            cells.get(..9).map(<[String]>::to_vec),
            Some(
                [
                    "11:30",
                    "WALKIN7",
                    "Walker, Ina",
                    "MRI_3T",
                    "MR",
                    "Phantom QA",
                    "Scheduled",
                    "admin",
                    "manual"
                ]
                .map(String::from)
                .to_vec()
            ),
            "{}",
            source(&c).await
        );
        assert!(!exists(&c, "div.errors").await);
        let mr = p.find_today(&[&format!("{SPS}.Modality=MR")]);
        assert!(
            mr.patient_ids().contains(&"WALKIN7".to_string()),
            "{:?}",
            mr.patient_ids()
        );
        let at_3t = p.find_today(&[
            &format!("{SPS}.Modality=MR"),
            &format!("{SPS}.ScheduledStationAETitle=MRI_3T"),
        ]);
        assert_eq!(at_3t.patient_ids(), ["PG201", "PG204", "WALKIN7"]);

        // Sync now, after a booking was added in Calpendo: a flash, then a new success
        // that inserted it.
        let mut more = bookings();
        more.push(booking(205, "PG205_Walker_Sync", "7T Research", 15));
        p.site.fake.set_bookings(more);
        submit(
            &c,
            "#sources li.source[data-source='calpendo'] form[action='/sync']",
        )
        .await;
        wait_for_text(&c, "p.flash", "Sync requested").await;
        let deadline = Instant::now() + STEP;
        loop {
            c.goto(&p.url("/")).await.expect("reload");
            if attr(&c, success, "datetime").await.as_deref() != Some(first_sync.as_str()) {
                let line = texts(&c, "#sources li.source[data-source='calpendo']").await;
                assert!(
                    line.first()
                        .is_some_and(|l| l.contains("(6 fetched: 1 new")),
                    "{line:?}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no new sync run after 'Sync now'"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(ids_in(&c, "SCHEDULED").await.contains(&"PG205".to_string()));

        // Phone size: the page never scrolls sideways; each entry is a card of its own,
        // its actions within reach.
        c.set_window_size(390, 844).await.expect("resize");
        c.goto(&p.url("/")).await.expect("reload");
        assert_fits_phone(&c).await;
        let cards = c
            .execute(
                "return Array.from(document.querySelectorAll('tr.entry')).map(r => \
                 [getComputedStyle(r).display, r.getBoundingClientRect().right, \
                  r.querySelector('td.actions button').getBoundingClientRect().right]);",
                vec![],
            )
            .await
            .expect("measure");
        let cards = cards.as_array().expect("array");
        assert!(!cards.is_empty());
        for card in cards {
            assert_eq!(card[0], "block", "a card: {cards:?}");
            assert!(
                card[1].as_f64() <= Some(390.0),
                "within the width: {cards:?}"
            );
            assert!(
                card[2].as_f64() <= Some(390.0),
                "buttons within reach: {cards:?}"
            );
        }
        screenshot(&c, &target_dir().join("admin-page-phone.png")).await;

        // Signing out ends the session.
        c.set_window_size(1200, 900).await.expect("resize");
        submit(&c, "form[action='/logout']").await;
        let deadline = Instant::now() + STEP;
        while !exists(&c, "form[action='/login']").await {
            assert!(Instant::now() < deadline, "still signed in");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!source(&c).await.contains("PG201"));

        c.close().await.expect("close the browser");
    });

    // The server logged the token's name, never the token.
    let log = p.site.server.log();
    assert!(log.contains("browser-e2e"), "{log}");
    assert!(!log.contains(&token), "the token is in the log");
}

/// Every status on the page, its counts against findscu's, each row action and the
/// manual entry's edit and delete as a console sees them, and one station's view.
#[test]
fn the_scan_day_matches_what_consoles_get() {
    let p = PageSite::start(mwl_bookings(), "", "");
    let today_da = format_da(today());
    let ids = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    p.site.block_on(async {
        let c = p.browser().await;
        sign_in(&c, &p.base, &p.token).await;

        // Completed and discontinued steps are listed apart and not counted as offered:
        // the page's count is findscu's.
        let offered = p.offered_today();
        assert_eq!(
            offered,
            ids(&[
                "SUB101", "SUB102", "SUB103", "SUB104", "SUB105", "SUB106", "SUB110"
            ])
        );
        assert_page_offers(&c, &offered).await;
        wait_for_text(
            &c,
            "#counts",
            "7 offered to consoles (6 scheduled, 1 in progress)",
        )
        .await;
        wait_for_text(&c, "#counts", "not offered: 1 completed, 1 discontinued").await;
        assert_eq!(
            texts(&c, "section.status-group h3").await,
            [
                "Scheduled (6)",
                "In progress (1)",
                "Completed (1)",
                "Discontinued (1)"
            ]
        );
        assert_eq!(ids_in(&c, "COMPLETED").await, ["SUB109"]);
        assert_eq!(ids_in(&c, "DISCONTINUED").await, ["SUB107"]);
        for (record, words, term) in [
            ("110", "In progress", "STARTED"),
            ("109", "Completed", "COMPLETED"),
            ("107", "Discontinued", "DISCONTINUED"),
            ("105", "Scheduled", "SCHEDULED"),
        ] {
            let badge = format!("tr.entry[data-record='{record}'] .badge");
            assert_eq!(texts(&c, &badge).await, [words], "{record}");
            assert_eq!(attr(&c, &badge, "title").await.as_deref(), Some(term));
        }
        assert_eq!(
            texts(&c, "tr.entry[data-record='105'] td.name").await,
            ["Hébert, Zoë"]
        );
        screenshot(&c, &target_dir().join("scan-day-desktop.png")).await;

        // Each row action changes what a console gets, recorded as set by admin.
        set_status(&c, "101", "COMPLETED").await;
        let offered = p.offered_today();
        assert!(!offered.contains(&"SUB101".to_string()), "{offered:?}");
        assert_page_offers(&c, &offered).await;
        assert_eq!(ids_in(&c, "COMPLETED").await, ["SUB101", "SUB109"]);
        assert_eq!(
            texts(&c, "tr.entry[data-record='101'] td:nth-child(8)").await,
            ["admin"]
        );
        set_status(&c, "101", "SCHEDULED").await;
        let offered = p.offered_today();
        assert!(offered.contains(&"SUB101".to_string()), "{offered:?}");
        assert_page_offers(&c, &offered).await;

        set_status(&c, "102", "DISCONTINUED").await;
        let offered = p.offered_today();
        assert!(!offered.contains(&"SUB102".to_string()), "{offered:?}");
        assert_page_offers(&c, &offered).await;
        let discontinued =
            p.find_today(&[&format!("{SPS}.ScheduledProcedureStepStatus=DISCONTINUED")]);
        assert_eq!(discontinued.patient_ids(), ["SUB102", "SUB107"]);

        // In progress: completed takes it off the worklist; a step the sync discontinued
        // can be offered again.
        set_status(&c, "110", "COMPLETED").await;
        set_status(&c, "107", "SCHEDULED").await;
        let offered = p.offered_today();
        assert_eq!(
            offered,
            ids(&["SUB101", "SUB103", "SUB104", "SUB105", "SUB106", "SUB107"])
        );
        assert_page_offers(&c, &offered).await;

        // A manual entry on a picked station: findscu finds it with its station's
        // modality; edited, it finds the new values; marked completed, it is gone from
        // the default query; deleted, it is gone.
        let form = "form[action='/manual']";
        fill(&c, form, "patient_id", "WALK1").await;
        fill(&c, form, "patient_name", "Walk^One").await;
        fill(&c, form, "start_date", &today_da).await;
        fill(&c, form, "start_time", "0715").await;
        pick(&c, form, "station_ae_title", "MRI_7T").await;
        submit(&c, form).await;
        wait_for_text(&c, "p.flash", "Manual entry added").await;
        let at_7t = [
            format!("{SPS}.Modality=MR"),
            format!("{SPS}.ScheduledStationAETitle=MRI_7T"),
            format!("{SPS}.ScheduledProcedureStepStartTime"),
        ];
        let at_7t: Vec<&str> = at_7t.iter().map(String::as_str).collect();
        assert_eq!(p.find_today(&at_7t).patient_ids(), ["SUB103", "WALK1"]);

        click(&c, "tr.entry[data-source='manual'] a.edit").await;
        let edit = "form[action='/manual/edit']";
        wait_for_text(&c, "h2", "Edit a manual entry").await;
        let kept = c
            .find(Locator::Css(&format!("{edit} input[name='start_time']")))
            .await
            .expect("field")
            .prop("value")
            .await
            .expect("value");
        assert_eq!(kept.as_deref(), Some("071500"));
        fill(&c, edit, "patient_id", "WALK2").await;
        fill(&c, edit, "start_time", "1845").await;
        submit(&c, edit).await;
        wait_for_text(&c, "p.flash", "Manual entry saved").await;
        let r = p.find_today(&at_7t);
        assert_eq!(r.patient_ids(), ["SUB103", "WALK2"]);
        assert_eq!(
            text(
                sps_item(r.by_patient_id("WALK2")),
                tags::SCHEDULED_PROCEDURE_STEP_START_TIME
            ),
            "184500"
        );
        let record = attr(&c, "tr.entry[data-source='manual']", "data-record")
            .await
            .expect("record id");
        set_status(&c, &record, "COMPLETED").await;
        assert_eq!(p.find_today(&at_7t).patient_ids(), ["SUB103"]);
        set_status(&c, &record, "SCHEDULED").await;
        assert_eq!(p.find_today(&at_7t).patient_ids(), ["SUB103", "WALK2"]);
        click(
            &c,
            "tr.entry[data-source='manual'] form[action='/manual/delete'] button",
        )
        .await;
        wait_for_text(&c, "p.flash", "Manual entry deleted").await;
        assert_eq!(p.find_today(&at_7t).patient_ids(), ["SUB103"]);
        assert!(!exists(&c, "tr.entry[data-source='manual']").await);

        // A form's URL asked for with GET shows the page or its form, never a bare 405.
        for (path, lands_on, shows) in [
            ("/entries/status", "/", "#counts"),
            ("/manual/delete", "/", "#counts"),
            ("/sync", "/", "#counts"),
            ("/manual", "/manual", "form[action='/manual']"),
        ] {
            c.goto(&p.url(path)).await.expect("GET");
            assert_eq!(path_of(&c).await, lands_on, "GET {path}");
            assert!(exists(&c, shows).await, "GET {path}: {}", source(&c).await);
        }

        // One station's view: its entries only, its count is findscu's for that station,
        // it reloads itself without JavaScript, and its actions come back to it.
        c.goto(&p.url("/")).await.expect("open /");
        click(&c, "nav.stations a[data-station='MRI_7T']").await;
        wait_for_text(&c, "h1", "MRI_7T").await;
        assert_eq!(path_of(&c).await, "/stations/MRI_7T");
        assert_eq!(
            attr(&c, "meta[http-equiv='refresh']", "content")
                .await
                .as_deref(),
            Some("60; url=/stations/MRI_7T")
        );
        assert!(!exists(&c, "script").await);
        let stations: Vec<String> = {
            let mut v = Vec::new();
            for e in c.find_all(Locator::Css("tr.entry")).await.expect("rows") {
                v.push(
                    e.attr("data-station")
                        .await
                        .expect("attr")
                        .unwrap_or_default(),
                );
            }
            v
        };
        assert!(
            !stations.is_empty() && stations.iter().all(|s| s == "MRI_7T"),
            "{stations:?}"
        );
        let station_key = format!("{SPS}.ScheduledStationAETitle=MRI_7T");
        let offered_7t = p.find_today(&[&station_key]).patient_ids();
        assert_eq!(offered_7t, ["SUB103"]);
        assert_page_offers(&c, &offered_7t).await;
        assert_eq!(ids_in(&c, "COMPLETED").await, ["SUB109", "SUB110"]);
        screenshot(&c, &target_dir().join("station-view.png")).await;
        set_status(&c, "103", "COMPLETED").await;
        assert_eq!(path_of(&c).await, "/stations/MRI_7T?flash=status");
        assert!(p.find_today(&[&station_key]).patient_ids().is_empty());
        assert_page_offers(&c, &[]).await;
        set_status(&c, "103", "SCHEDULED").await;

        // Phone size: both pages fit the width.
        c.set_window_size(390, 844).await.expect("resize");
        c.goto(&p.url("/stations/MRI_7T")).await.expect("station");
        assert_fits_phone(&c).await;
        screenshot(&c, &target_dir().join("station-view-phone.png")).await;
        c.goto(&p.url("/")).await.expect("open /");
        assert_fits_phone(&c).await;
        screenshot(&c, &target_dir().join("scan-day-phone.png")).await;

        c.close().await.expect("close the browser");
    });

    // Subject names and IDs never reach the log (it is at INFO).
    let log = p.site.server.log();
    assert!(
        log.contains("status overridden from the status page"),
        "{log}"
    );
    for secret in ["SUB10", "WALK1", "WALK2", "Tremblay", "Hébert", "Walk^"] {
        assert!(!log.contains(secret), "{secret:?} logged:\n{log}");
    }
}

/// A source that keeps failing: after `unready_after_intervals` of its intervals without
/// a success the page says the worklist may be stale (when `/readyz` turns 503), and its
/// line names the failed attempt and its error; the banner goes once it succeeds again.
#[test]
fn a_failing_source_shows_the_stale_banner() {
    let p = PageSite::start(
        bookings(),
        "unready_after_intervals = 2\n",
        "sync_interval = 2\n",
    );
    p.site.block_on(async {
        let c = p.browser().await;
        sign_in(&c, &p.base, &p.token).await;
        assert!(!exists(&c, "p.stale").await, "{}", source(&c).await);

        p.site.fake.set_fault(Fault::Status(503), FaultScope::All);
        reload_until(&c, &p.url("/"), "p.stale[data-source='calpendo']", true).await;
        // The failed attempt is recorded once its retries are over.
        reload_until(&c, &p.url("/"), "#sources span.failed", true).await;
        let banner = texts(&c, "p.stale").await.join("\n");
        assert!(
            banner.contains(
                "This worklist may be stale: calpendo has not synced successfully since "
            ),
            "{banner}"
        );
        assert!(banner.contains("it syncs every 2 s"), "{banner}");
        let line = texts(&c, "#sources li.source[data-source='calpendo']").await;
        let line = line.first().cloned().unwrap_or_default();
        assert!(line.contains("last success "), "{line}");
        assert!(line.contains("; last attempt "), "{line}");
        assert!(line.contains(" failed: "), "{line}");
        assert!(line.contains("503"), "the error is named: {line}");
        assert_eq!(
            attr(
                &c,
                "#sources li.source[data-source='calpendo']",
                "data-ready"
            )
            .await
            .as_deref(),
            Some("false")
        );
        screenshot(&c, &target_dir().join("stale-banner.png")).await;
        // The same rule as /readyz.
        c.goto(&p.url("/readyz")).await.expect("readyz");
        let body = source(&c).await;
        assert!(body.contains("\"ready\":false"), "{body}");

        p.site.fake.clear_fault();
        reload_until(&c, &p.url("/"), "p.stale", false).await;
        let line = texts(&c, "#sources li.source[data-source='calpendo']").await;
        assert!(
            line.first().is_some_and(|l| !l.contains("failed")),
            "{line:?}"
        );
        c.close().await.expect("close the browser");
    });
}

/// A sync that would empty the day is refused by the mass-change guard (issue 17 point 5);
/// the page then offers to apply it once, behind a box the admin must tick, and consoles
/// see the change only after that.
#[test]
fn a_refused_mass_change_is_applied_once_from_the_page() {
    let p = PageSite::start(bookings(), "", "sync_interval = 600\n");
    p.site.block_on(async {
        let c = p.browser().await;
        sign_in(&c, &p.base, &p.token).await;
        let before = p.offered_today();
        assert_eq!(before.len(), 4, "{before:?}");
        assert!(!exists(&c, "form.accept-mass-change").await);

        // Calpendo suddenly lists nothing.
        p.site.fake.set_bookings(Vec::new());
        submit(&c, "#sources form.inline").await;
        reload_until(&c, &p.url("/"), "form.accept-mass-change", true).await;
        let line = texts(&c, "#sources li.source[data-source='calpendo']").await;
        let line = line.first().cloned().unwrap_or_default();
        assert!(line.contains("mass change refused"), "{line}");
        assert_eq!(p.offered_today(), before, "nothing changed");
        screenshot(&c, &target_dir().join("mass-change-refused.png")).await;

        // The box is required: the browser does not send the form without it.
        submit(&c, "form.accept-mass-change").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(p.offered_today(), before, "not applied without the box");

        click(
            &c,
            "form.accept-mass-change input[name='accept_mass_change']",
        )
        .await;
        submit(&c, "form.accept-mass-change").await;
        let deadline = Instant::now() + STEP;
        while !p.offered_today().is_empty() {
            assert!(
                Instant::now() < deadline,
                "never applied: {}",
                source(&c).await
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        reload_until(&c, &p.url("/"), "form.accept-mass-change", false).await;
        let log = p.site.server.log();
        assert!(
            log.contains("runs without the mass-change guard"),
            "the acceptance is logged: {log}"
        );
        c.close().await.expect("close the browser");
    });
}
