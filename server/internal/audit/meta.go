package audit

// Meta is what the audit trail records about the request that caused an action: the transport
// fills it in, and the use cases (admin, broker) copy it into every event they record.
type Meta struct {
	RequestID  string
	RemoteAddr string
}
