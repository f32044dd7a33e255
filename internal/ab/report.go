package ab

// placeholder, filled in below
