package auth

// HashPeak is the most argon2id hashes seen running at once in this process.
func HashPeak() int64 { return hashPeak.Load() }
