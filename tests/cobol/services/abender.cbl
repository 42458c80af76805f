      * ABENDER: ends abnormally the way LK-MODE asks, to show that
      * one failing request never takes its region down.
      *   STOPRUN  STOP RUN inside a service
      *   MISSING  runtime error: CALL of a program that does not exist
      *   CRASH    SIGSEGV raised in the process
      *   LOOP     never returns (request timeout)
      *   NAP      returns normally after two seconds (a call in flight)
      *   anything else returns normally with LK-RESULT = "OK".
       IDENTIFICATION DIVISION.
       PROGRAM-ID. ABENDER.
       DATA DIVISION.
       WORKING-STORAGE SECTION.
       01 WS-MISSING          PIC X(16) VALUE "NOSUCHPROGRAM".
       01 WS-SPIN             PIC 9(9) COMP-5 VALUE 0.
       LINKAGE SECTION.
       01 LK-MODE             PIC X(8).
       01 LK-RESULT           PIC X(8).
       PROCEDURE DIVISION USING LK-MODE LK-RESULT.
           EVALUATE LK-MODE
              WHEN "STOPRUN"
                 STOP RUN
              WHEN "MISSING"
                 CALL WS-MISSING
              WHEN "CRASH"
                 CALL "raise" USING BY VALUE 11
              WHEN "LOOP"
                 PERFORM UNTIL WS-SPIN > 1
                    CALL "CBL_OC_NANOSLEEP" USING 100000000
                 END-PERFORM
              WHEN "NAP"
                 CALL "CBL_OC_NANOSLEEP" USING 2000000000
           END-EVALUATE
           MOVE "OK" TO LK-RESULT
           GOBACK.
