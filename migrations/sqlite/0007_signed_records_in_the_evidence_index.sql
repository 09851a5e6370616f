-- The evidence index also lists the frame of each signed record (RecordVerified): a signed
-- begin or end that came by DataTransfer is part of the session's evidence export. The sessions
-- read model is emptied so that it is rebuilt with those rows.
DELETE FROM rm_session_evidence;
DELETE FROM rm_sessions;
DELETE FROM projection_tracking WHERE projection = 'sessions';
