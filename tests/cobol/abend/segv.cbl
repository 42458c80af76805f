      *> SEGV - a called program that crashes: it raises SIGSEGV (11)
      *> through the C library, as a wild pointer would.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. SEGV.
       DATA DIVISION.
       LINKAGE SECTION.
       01  LK-TEXT                 PIC X(8).
       PROCEDURE DIVISION USING LK-TEXT.
           MOVE "CRASHING" TO LK-TEXT
           CALL "raise" USING BY VALUE 11
           END-CALL
           MOVE "RETURNED" TO LK-TEXT
           GOBACK.
