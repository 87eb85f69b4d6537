//! Tests of the reader: uncompressed and compressed segments and history files, whole, by
//! range and streamed; damaged complete files are errors, damaged `.partial` files end
//! where the damage starts.
