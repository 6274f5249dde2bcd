"""Who may do what on the cluster: SCRAM credentials of systems and bus services, and the ACLs
generated from the catalogue and kept in step by a reconciler (issue 11, sections 2 and 3)."""
