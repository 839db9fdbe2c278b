//! `.dockerbuild` bundles of any index structure: indexes that list each other or themselves,
//! nested deep, records sharing configs and status logs, missing and damaged blobs. The input
//! describes the blobs; the target writes them as a real bundle and reads it.
#![no_main]

use std::io::Write;

use cachehit::{
    analysis,
    readers::{InputFormat, ReadOptions, read_inputs},
    render,
};
use libfuzzer_sys::{arbitrary, fuzz_target};

#[derive(arbitrary::Arbitrary, Debug)]
enum Blob {
    /// An OCI index listing other blobs (by position), as indexes or as manifests.
    Index(Vec<(u8, bool)>),
    /// A record's manifest: its config and layers, by position.
    Manifest {
        config: Option<u8>,
        status_log: Option<u8>,
        error: Option<u8>,
        provenance: Option<u8>,
    },
    /// A history record.
    Config { reference: u8, created: u32 },
    /// A status log: length-prefixed messages.
    StatusLog(Vec<u8>),
    Bytes(Vec<u8>),
}

#[derive(arbitrary::Arbitrary, Debug)]
struct Bundle {
    blobs: Vec<Blob>,
    /// What `index.json` lists: (position, as an index).
    top: Vec<(u8, bool)>,
}

fn digest(position: u8) -> String {
    format!("sha256:{position:064x}")
}

fn entries(list: &[(u8, bool)]) -> serde_json::Value {
    serde_json::Value::Array(
        list.iter()
            .map(|(position, nested)| {
                serde_json::json!({
                    "mediaType": if *nested {
                        "application/vnd.oci.image.index.v1+json"
                    } else {
                        "application/vnd.oci.image.manifest.v1+json"
                    },
                    "digest": digest(*position),
                    "annotations": {"vnd.buildkit.history.reference": format!("ref{position}")},
                })
            })
            .collect(),
    )
}

fn bytes(blob: &Blob) -> Vec<u8> {
    let layer = |media: &str, position: &Option<u8>| {
        position.map(|p| serde_json::json!({"mediaType": media, "digest": digest(p)}))
    };
    match blob {
        Blob::Index(list) => serde_json::json!({"manifests": entries(list)})
            .to_string()
            .into_bytes(),
        Blob::Manifest {
            config,
            status_log,
            error,
            provenance,
        } => {
            let layers: Vec<serde_json::Value> = [
                layer("application/vnd.buildkit.status.v0", status_log),
                layer("application/vnd.googeapis.google.rpc.status+proto", error),
                layer("application/vnd.in-toto+json", provenance),
            ]
            .into_iter()
            .flatten()
            .collect();
            serde_json::json!({
                "config": config.map(|c| serde_json::json!({
                    "mediaType": "application/vnd.buildkit.historyrecord.v0",
                    "digest": digest(c),
                })),
                "layers": layers,
            })
            .to_string()
            .into_bytes()
        }
        Blob::Config { reference, created } => serde_json::json!({
            "Ref": format!("ref{reference}"),
            "CreatedAt": {"seconds": created, "nanos": 0},
        })
        .to_string()
        .into_bytes(),
        Blob::StatusLog(data) | Blob::Bytes(data) => data.clone(),
    }
}

fuzz_target!(|bundle: Bundle| {
    if bundle.blobs.len() > 64 {
        return;
    }
    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    {
        let gzip = flate2::write::GzEncoder::new(&mut file, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gzip);
        let mut add = |name: String, data: Vec<u8>| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o444);
            header.set_cksum();
            tar.append_data(&mut header, name, data.as_slice())
                .expect("tar entry");
        };
        for (position, blob) in bundle.blobs.iter().enumerate() {
            let name = format!("blobs/{}", digest(position as u8).replace(':', "/"));
            add(name, bytes(blob));
        }
        add(
            "index.json".to_string(),
            serde_json::json!({"manifests": entries(&bundle.top)})
                .to_string()
                .into_bytes(),
        );
        tar.into_inner()
            .expect("tar")
            .finish()
            .expect("gzip")
            .flush()
            .expect("flush");
    }
    let options = ReadOptions {
        forced_format: Some(InputFormat::Dockerbuild),
        ..ReadOptions::default()
    };
    if let Ok(build) = read_inputs(&[file.path().to_path_buf()], &options) {
        let report = analysis::analyze(build);
        render::markdown::render(&report);
    }
});
