//! Generates Rust for `proto/rewind/agent/v1/*.proto` with `protox` (a protobuf compiler in
//! Rust), so building Rewind needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/rewind/agent/v1/xlog.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(descriptors)?;
    Ok(())
}
