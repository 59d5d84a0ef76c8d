fn main() {
    println!("bitnet: under construction");
}
