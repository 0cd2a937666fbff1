//! The command-line options that shape the named queries, shared by `mwl-loadgen` (C-FIND)
//! and `mwl-webload` (DICOMweb) so that both ask the same things.

use jiff::civil::Date;

use crate::queries::QueryParams;

/// The options of the named queries (`#[command(flatten)]` them into a binary's args).
#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    /// ScheduledStationAETitle of today-station-modality.
    #[arg(long, default_value = "MRI_DIAG_01")]
    pub station: String,
    /// ScheduledStationAETitle of busy-station.
    #[arg(long, default_value = "MRI_BUSY")]
    pub busy_station: String,
    /// Modality of today-station-modality and busy-station.
    #[arg(long, default_value = "MR")]
    pub modality: String,
    /// "Today" as YYYYMMDD (default: today in --timezone).
    #[arg(long)]
    pub date: Option<String>,
    /// The site's time zone, for the default --date.
    #[arg(long, default_value = "America/Edmonton")]
    pub timezone: String,
    /// Days of the date-range query, from --date on.
    #[arg(long, default_value_t = 3)]
    pub range_days: u32,
    /// PatientName pattern of name-wildcard.
    #[arg(long, default_value = "Sim*")]
    pub name_pattern: String,
}

/// A `--date` or `--timezone` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryArgsError {
    /// `--date` is not a date of eight digits (separators are ignored).
    #[error("--date {0:?}: expected YYYYMMDD ({1})")]
    Date(String, String),
    /// `--timezone` is not in the bundled time zone database.
    #[error("--timezone {0:?}: {1}")]
    TimeZone(String, String),
}

impl QueryArgs {
    /// "Today": `--date`, else today in `--timezone`.
    pub fn day(&self) -> Result<Date, QueryArgsError> {
        match &self.date {
            Some(d) => {
                let digits: String = d.chars().filter(char::is_ascii_digit).collect();
                Date::strptime("%Y%m%d", &digits)
                    .map_err(|e| QueryArgsError::Date(d.clone(), e.to_string()))
            }
            None => {
                let tz = jiff::tz::TimeZoneDatabase::bundled()
                    .get(&self.timezone)
                    .map_err(|e| QueryArgsError::TimeZone(self.timezone.clone(), e.to_string()))?;
                Ok(jiff::Timestamp::now().to_zoned_datetime(tz).date())
            }
        }
    }

    /// The queries' parameters for `day`, without PatientIDs yet.
    pub fn params(&self, day: Date) -> QueryParams {
        QueryParams {
            day,
            station: self.station.clone(),
            busy_station: self.busy_station.clone(),
            modality: self.modality.clone(),
            range_days: self.range_days,
            name_pattern: self.name_pattern.clone(),
            patient_ids: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        query: QueryArgs,
    }

    #[test]
    fn the_date_is_read_and_a_bad_one_named() {
        let cli = Cli::try_parse_from(["x", "--date", "20261206"]).expect("args");
        assert_eq!(cli.query.day(), Ok(jiff::civil::date(2026, 12, 6)));
        assert_eq!(
            cli.query
                .params(jiff::civil::date(2026, 12, 6))
                .busy_station,
            "MRI_BUSY"
        );
        let cli = Cli::try_parse_from(["x", "--date", "2026-12-06"]).expect("args");
        assert_eq!(cli.query.day(), Ok(jiff::civil::date(2026, 12, 6)));
        let cli = Cli::try_parse_from(["x", "--date", "2026-12"]).expect("args");
        assert!(matches!(cli.query.day(), Err(QueryArgsError::Date(d, _)) if d == "2026-12"));
        let cli = Cli::try_parse_from(["x", "--timezone", "Mars/Olympus"]).expect("args");
        assert!(matches!(cli.query.day(), Err(QueryArgsError::TimeZone(..))));
    }
}
