//! `cargo xtask`: Strata's developer and inspection commands.

fn main() {
    println!("no commands yet");
}
