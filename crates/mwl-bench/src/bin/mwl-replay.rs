//! `mwl-replay`: an MWL SCP that does no work: it answers each C-FIND with the PDUs
//! `mwl-loadgen --record` recorded from a real server for the same identifier, so that
//! the load generator's throughput against it is the client's ceiling (see
//! `mwl_bench::replay`).
//!
//! ```text
//! mwl-loadgen --port 11112 --mix busy-station,patient-id --patient-ids ids.txt --record rec.bin
//! mwl-replay --recording rec.bin --port 11113
//! mwl-loadgen --port 11113 --mix busy-station,patient-id --patient-ids ids.txt
//! ```
//!
//! A request whose identifier was not recorded, on another presentation context than
//! the recorded one, or a DIMSE request other than C-FIND (a C-CANCEL is ignored) ends
//! the association with an A-ABORT and a line on standard error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use dicom_ul::pdu::{MAXIMUM_PDU_SIZE, Pdu, read_pdu, write_pdu};
use mwl_bench::replay::accept::{accept, accepted_context, requester_max_pdu};
use mwl_bench::replay::framing::{
    A_ABORT, A_ASSOCIATE_RQ, A_RELEASE_RQ, ABORT, Assembler, C_FIND_RQ, P_DATA_TF, PDU_HEADER,
    RELEASE_RP, pdu_header, pdvs,
};
use mwl_bench::replay::recording::Recording;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Replays recorded C-FIND answers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The recording (`mwl-loadgen --record`).
    #[arg(long)]
    recording: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// TCP port.
    #[arg(long)]
    port: u16,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// The largest PDU a requester may send us (a C-FIND request is small).
const MAX_IN_PDU: u32 = 1 << 20;
/// C-CANCEL-RQ's CommandField: nothing to cancel, the answer is already written.
const C_CANCEL_RQ: u16 = 0x0FFF;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bytes =
        std::fs::read(&args.recording).with_context(|| format!("{}", args.recording.display()))?;
    let rec = Arc::new(
        Recording::from_bytes(&bytes).with_context(|| format!("{}", args.recording.display()))?,
    );
    drop(bytes);
    eprintln!("mwl-replay: {} recorded answers", rec.len());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(serve(SocketAddr::new(args.bind, args.port), rec))
}

async fn serve(addr: SocketAddr, rec: Arc<Recording>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let rec = Arc::clone(&rec);
        tokio::spawn(async move {
            if let Err(e) = association(stream, &rec).await {
                eprintln!("mwl-replay: {peer}: {e:#}");
            }
        });
    }
}

/// One association: A-ASSOCIATE-AC, then recorded answers until the release.
async fn association(stream: TcpStream, rec: &Recording) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::with_capacity(64 * 1024, read);
    let mut body = Vec::new();
    let kind = read_pdu_body(&mut read, &mut body).await?;
    if kind != A_ASSOCIATE_RQ {
        write.write_all(&ABORT).await?;
        bail!("PDU type {kind:#04x} before the association");
    }
    let mut whole = Vec::with_capacity(PDU_HEADER + body.len());
    whole.extend_from_slice(&[kind, 0]);
    whole.extend_from_slice(&u32::try_from(body.len())?.to_be_bytes());
    whole.extend_from_slice(&body);
    let Some(Pdu::AssociationRQ(rq)) = read_pdu(&whole[..], MAXIMUM_PDU_SIZE, false)? else {
        write.write_all(&ABORT).await?;
        bail!("unreadable A-ASSOCIATE-RQ");
    };
    if requester_max_pdu(&rq).is_some_and(|m| m != 0 && m < rec.max_pdu) {
        write.write_all(&ABORT).await?;
        bail!(
            "the requester takes PDUs up to {:?} bytes; the recording's are up to {}",
            requester_max_pdu(&rq),
            rec.max_pdu
        );
    }
    let ac = accept(&rq, MAX_IN_PDU);
    if accepted_context(&ac) != Some(rec.context_id) {
        write.write_all(&ABORT).await?;
        bail!(
            "MWL FIND would be on context {:?}; the recording's is {}",
            accepted_context(&ac),
            rec.context_id
        );
    }
    let mut out = Vec::new();
    write_pdu(&mut out, &Pdu::AssociationAC(ac))?;
    write.write_all(&out).await?;
    let mut assembler = Assembler::default();
    loop {
        let kind = read_pdu_body(&mut read, &mut body).await?;
        match kind {
            P_DATA_TF => {
                for pdv in pdvs(&body) {
                    let Some(request) = assembler.push(pdv?)? else {
                        continue;
                    };
                    match request.command_field {
                        C_FIND_RQ => {}
                        C_CANCEL_RQ => continue,
                        other => {
                            write.write_all(&ABORT).await?;
                            bail!("DIMSE command {other:#06x} is not replayed");
                        }
                    }
                    if request.context_id != rec.context_id {
                        write.write_all(&ABORT).await?;
                        bail!("C-FIND on context {}", request.context_id);
                    }
                    let Some(answer) = rec.answer(&request.identifier) else {
                        write.write_all(&ABORT).await?;
                        bail!(
                            "no recorded answer for this identifier ({} bytes)",
                            request.identifier.len()
                        );
                    };
                    write.write_all(answer).await?;
                }
            }
            A_RELEASE_RQ => {
                write.write_all(&RELEASE_RP).await?;
                return Ok(());
            }
            A_ABORT => return Ok(()),
            other => {
                write.write_all(&ABORT).await?;
                return Err(anyhow!("unexpected PDU type {other:#04x}"));
            }
        }
    }
}

/// Reads one PDU into `body` (its bytes after the header); its type.
async fn read_pdu_body(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    body: &mut Vec<u8>,
) -> anyhow::Result<u8> {
    let mut header = [0u8; PDU_HEADER];
    read.read_exact(&mut header).await?;
    let (kind, len) = pdu_header(&header);
    if len > MAX_IN_PDU {
        bail!("a PDU of {len} bytes (we take up to {MAX_IN_PDU})");
    }
    body.resize(len as usize, 0);
    read.read_exact(body).await?;
    Ok(kind)
}
