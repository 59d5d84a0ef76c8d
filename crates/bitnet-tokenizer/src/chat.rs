//! Chat formats (see chat/).
