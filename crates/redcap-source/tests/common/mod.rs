//! What the integration tests share: a fake REDCap serving the sample day, and a source
//! configured for it as Pylantir's example config configures its REDCap source.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use redcap_fake::{FakeConfig, FakeRedcap, SAMPLE_FIXTURE, load_fixture};
use redcap_source::{RedcapKind, RedcapSource, SiteContext, parse_settings};
use serde_json::{Value, json};

/// Pylantir's example `redcap2wl` mapping (`config_example_with_cors.json`).
pub fn pylantir_mapping() -> Value {
    json!({
        "study_id": "study_id", "family_id": "family_id", "youth_dob_y": "youth_dob_y",
        "t1_date": "t1_date", "demo_sex": "demo_sex",
        "scheduled_date": "scheduled_start_date", "scheduled_time": "scheduled_start_time",
        "mri_wt_lbs": "patient_weight_lb", "referring_physician": "referring_physician_name",
        "performing_physician": "performing_physician", "station_name": "station_name",
        "status": "performed_procedure_step_status"
    })
}

/// The settings of the tests: site 792, its protocol, the example mapping, plus `extra`.
pub fn settings(extra: Value) -> Value {
    let mut v = json!({
        "site": "792",
        "protocol": {"792": "BRAIN_MRI_3T"},
        "field_mapping": pylantir_mapping(),
    });
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

/// A fake REDCap with the sample day, every record last modified an hour ago.
pub async fn fake_with_sample_day() -> (FakeRedcap, Date) {
    let fake = FakeRedcap::start(FakeConfig::default())
        .await
        .expect("fake starts");
    let today = fake.now().date();
    fake.set_records(load_fixture(SAMPLE_FIXTURE, today).expect("fixture loads"));
    age_all_records(&fake);
    (fake, today)
}

/// Marks every record as last modified an hour ago.
pub fn age_all_records(fake: &FakeRedcap) {
    let hour_ago = fake
        .now()
        .checked_sub(SignedDuration::from_hours(1))
        .expect("an hour ago");
    for r in fake.records() {
        fake.set_modified_at(&r.record_id, hour_ago);
    }
}

/// The source for `fake` with `token`, the settings `extra` added.
pub fn source_with_token(fake: &FakeRedcap, token: &str, extra: Value) -> RedcapSource {
    let url = fake.api_url();
    let token = token.to_string();
    let env = move |k: &str| match k {
        "REDCAP_API_URL" => Some(url.clone()),
        "REDCAP_API_TOKEN" => Some(token.clone()),
        _ => None,
    };
    let config = parse_settings(
        &settings(extra),
        RedcapKind::Redcap,
        &env,
        &SiteContext::default(),
    )
    .expect("valid settings");
    RedcapSource::new("redcap", config)
        .expect("source builds")
        .with_backoff_base(Duration::from_millis(5))
}

/// The source for `fake`, the settings `extra` added.
pub fn source(fake: &FakeRedcap, extra: Value) -> RedcapSource {
    source_with_token(fake, fake.token(), extra)
}

/// A clock tests move by hand: the real time plus an offset.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn now(&self) -> Timestamp {
        Timestamp::now()
            .checked_add(SignedDuration::from_secs(self.0.load(Ordering::SeqCst)))
            .expect("in range")
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}
