-- Every revocation takes the next value of a counter, so replicas can read what they have not seen
-- yet and answer introspection from memory (see server/src/db/revocations.rs). Rows from before this
-- migration have generation 0, which the first full load reads.
ALTER TABLE jwt_revocations ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE client_revocations ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jwt_revocations_generation ON jwt_revocations (generation);
CREATE INDEX client_revocations_generation ON client_revocations (generation);
INSERT INTO meta (name, value) VALUES ('revocations_generation', 0);
