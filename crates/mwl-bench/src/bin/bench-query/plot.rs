//! The gnuplot plot of today-station-modality queries/s against the worklist size.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::results::{Results, ServerKind, pooled};

/// Writes the data and script next to the results and runs gnuplot into `png`.
pub(crate) fn plot(r: &Results, png: &Path, work_dir: &Path) -> anyhow::Result<()> {
    let dat = work_dir.join("query-today.dat");
    let mut text = String::from("# N mwlbridge wlmscpfs pylantir (today-station-modality q/s)\n");
    for size in &r.sizes {
        let v = |k| {
            pooled(size, k, "today-station-modality")
                .map_or("NaN".to_string(), |p| format!("{:.4}", p.qps()))
        };
        let _ = writeln!(
            text,
            "{} {} {} {}",
            size.n,
            v(ServerKind::Mwlbridge),
            v(ServerKind::Wlmscpfs),
            v(ServerKind::Pylantir)
        );
    }
    std::fs::write(&dat, text)?;
    let values: Vec<f64> = r
        .sizes
        .iter()
        .flat_map(|size| {
            [
                ServerKind::Mwlbridge,
                ServerKind::Wlmscpfs,
                ServerKind::Pylantir,
            ]
            .into_iter()
            .filter_map(|k| pooled(size, k, "today-station-modality").map(|p| p.qps()))
        })
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    if values.is_empty() {
        bail!("no today-station-modality figures to plot");
    }
    let gp = work_dir.join("query-today.gp");
    let script = format!(
        r##"set terminal pngcairo size 960,640 font "DejaVu Sans,12"
set output '{png}'
set title "today + station + modality C-FIND, {clients} clients, persistent associations\n({date}, {machine})" noenhanced
set logscale xy
set xlabel "worklist items (N)"
set ylabel "queries per second (log scale)"
set format x "%.0f"
set xrange [{xmin}:{xmax}]
set grid xtics ytics mxtics mytics
set key bottom left box opaque
set yrange [{ymin}:{ymax}]
set datafile missing "NaN"
label(v) = v >= 100 ? sprintf("%.0f", v) : sprintf("%.3g", v)
plot '{dat}' using 1:2 with linespoints lw 2 pt 7 ps 1.3 lc rgb "#1b7837" title "mwlbridge", \
     '' using 1:2:(label($2)) with labels offset 0,1 tc rgb "#1b7837" notitle, \
     '' using 1:3 with linespoints lw 2 pt 5 ps 1.3 lc rgb "#2166ac" title "DCMTK wlmscpfs 3.6.7", \
     '' using 1:3:(label($3)) with labels offset 0,1 tc rgb "#2166ac" notitle, \
     '' using 1:4 with linespoints lw 2 pt 9 ps 1.5 lc rgb "#b2182b" title "Pylantir 0.4.6", \
     '' using 1:4:(label($4)) with labels offset 0,-1 tc rgb "#b2182b" notitle
"##,
        png = png.display(),
        dat = dat.display(),
        clients = r.clients,
        date = r.date,
        machine = r.machine.split(',').take(2).collect::<Vec<_>>().join(","),
        xmin = r.sizes.iter().map(|s| s.n).min().unwrap_or(1) as f64 / 1.6,
        xmax = r.sizes.iter().map(|s| s.n).max().unwrap_or(1) as f64 * 1.6,
        ymin = lo / 4.0,
        ymax = hi * 4.0,
    );
    std::fs::write(&gp, script)?;
    let out = Command::new("gnuplot")
        .arg(&gp)
        .output()
        .context("running gnuplot")?;
    if !out.status.success() {
        bail!("gnuplot: {}", String::from_utf8_lossy(&out.stderr));
    }
    eprintln!("wrote {}", png.display());
    Ok(())
}
