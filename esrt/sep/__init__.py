"""Service execution process (SEP): runs one COBOL request at a time for its region."""
