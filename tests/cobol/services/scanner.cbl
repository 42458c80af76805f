      *> ---------------------------------------------------------------
      *> SCANNER - test service: reads indexed file SCANFILE in key
      *> order while other calls delete its records or change their
      *> alternate key SC-TAG.
      *>
      *> LK-MODE "L": SCANFILE made anew with records 1 to LK-COUNT,
      *>              each with SC-TAG ten times its key.
      *>         "S": START at key LK-KEY, READ NEXT (its key in
      *>              LK-FIRST), wait LK-WAIT-MS milliseconds, READ NEXT
      *>              again (its key in LK-SECOND). The file is opened
      *>              I-O, so each record read is locked until the call
      *>              commits.
      *>         "P": the same backwards: START at the last key not
      *>              above LK-KEY, READ PREVIOUS twice.
      *>         "D": DELETE the record of key LK-KEY.
      *>         "X": the same, then wait LK-WAIT-MS milliseconds before
      *>              the call commits (the record stays locked).
      *>         "A": like "S" on the alternate key: START at SC-TAG
      *>              LK-KEY, READ NEXT twice (the keys of the records
      *>              in LK-FIRST and LK-SECOND).
      *>         "M": give the record of key LK-KEY the SC-TAG LK-COUNT
      *>              (REWRITE), then wait LK-WAIT-MS milliseconds before
      *>              the call commits.
      *>         "K": READ the record whose SC-TAG is LK-KEY (its key in
      *>              LK-FIRST).
      *>         "W": give the SC-TAG of record LK-KEY to record
      *>              LK-COUNT, and record LK-KEY its old SC-TAG + 5,
      *>              then wait LK-WAIT-MS milliseconds before the call
      *>              commits.
      *> LK-STATUS: the file status of the last operation before CLOSE.
      *> ---------------------------------------------------------------
       IDENTIFICATION DIVISION.
       PROGRAM-ID. SCANNER.

       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT SCANFILE ASSIGN TO EXTERNAL SCANFILE
               ORGANIZATION IS INDEXED
               ACCESS MODE IS DYNAMIC
               RECORD KEY IS SC-ID
               ALTERNATE RECORD KEY IS SC-TAG
               FILE STATUS IS WS-FILE-STATUS.

       DATA DIVISION.
       FILE SECTION.
       FD  SCANFILE.
       01  SC-RECORD.
           05  SC-ID               PIC 9(6).
           05  SC-TAG              PIC 9(6).
           05  SC-DATA             PIC X(20).

       WORKING-STORAGE SECTION.
       01  WS-FILE-STATUS          PIC XX.
       01  WS-RESULT               PIC XX.
       01  WS-NUMBER               PIC 9(6).
       01  WS-NANOSECONDS          PIC S9(18) COMP-5.

       LINKAGE SECTION.
       01  LK-MODE                 PIC X.
       01  LK-KEY                  PIC 9(6).
       01  LK-COUNT                PIC 9(6).
       01  LK-WAIT-MS              PIC 9(6).
       01  LK-FIRST                PIC 9(6).
       01  LK-SECOND               PIC 9(6).
       01  LK-STATUS               PIC XX.

       PROCEDURE DIVISION USING LK-MODE LK-KEY LK-COUNT LK-WAIT-MS
                                LK-FIRST LK-SECOND LK-STATUS.
       MAIN-PARA.
           MOVE 0 TO LK-FIRST LK-SECOND
           EVALUATE LK-MODE
               WHEN "L"
                   PERFORM LOAD-PARA
               WHEN "S"
               WHEN "P"
               WHEN "A"
                   PERFORM SCAN-PARA
               WHEN "D"
               WHEN "X"
                   PERFORM DELETE-PARA
               WHEN "M"
                   PERFORM RETAG-PARA
               WHEN "K"
                   PERFORM READ-TAG-PARA
               WHEN "W"
                   PERFORM HAND-TAG-PARA
               WHEN OTHER
                   MOVE "??" TO WS-RESULT
           END-EVALUATE
           MOVE WS-RESULT TO LK-STATUS
           GOBACK.

       LOAD-PARA.
           OPEN OUTPUT SCANFILE
           PERFORM VARYING WS-NUMBER FROM 1 BY 1
                   UNTIL WS-NUMBER > LK-COUNT
                      OR WS-FILE-STATUS NOT = "00"
               MOVE WS-NUMBER TO SC-ID
               COMPUTE SC-TAG = WS-NUMBER * 10
               MOVE "SCANNED RECORD" TO SC-DATA
               WRITE SC-RECORD
           END-PERFORM
           MOVE WS-FILE-STATUS TO WS-RESULT
           CLOSE SCANFILE.

       SCAN-PARA.
           OPEN I-O SCANFILE
           MOVE LK-KEY TO SC-ID SC-TAG
           EVALUATE LK-MODE
               WHEN "S"
                   START SCANFILE KEY IS NOT LESS THAN SC-ID
               WHEN "A"
                   START SCANFILE KEY IS NOT LESS THAN SC-TAG
               WHEN OTHER
                   START SCANFILE KEY IS NOT GREATER THAN SC-ID
           END-EVALUATE
           IF WS-FILE-STATUS = "00"
               PERFORM READ-ONE-PARA
           END-IF
           IF WS-FILE-STATUS = "00"
               MOVE SC-ID TO LK-FIRST
               PERFORM HOLD-PARA
               PERFORM READ-ONE-PARA
               IF WS-FILE-STATUS = "00"
                   MOVE SC-ID TO LK-SECOND
               END-IF
           END-IF
           MOVE WS-FILE-STATUS TO WS-RESULT
           CLOSE SCANFILE.

       READ-ONE-PARA.
           IF LK-MODE = "P"
               READ SCANFILE PREVIOUS RECORD
           ELSE
               READ SCANFILE NEXT RECORD
           END-IF.

       DELETE-PARA.
           OPEN I-O SCANFILE
           MOVE LK-KEY TO SC-ID
           DELETE SCANFILE RECORD
           IF LK-MODE = "X"
               PERFORM HOLD-PARA
           END-IF
           MOVE WS-FILE-STATUS TO WS-RESULT
           CLOSE SCANFILE.

       RETAG-PARA.
           OPEN I-O SCANFILE
           MOVE LK-KEY TO SC-ID
           READ SCANFILE
           IF WS-FILE-STATUS = "00"
               MOVE LK-COUNT TO SC-TAG
               REWRITE SC-RECORD
           END-IF
           MOVE WS-FILE-STATUS TO WS-RESULT
           PERFORM HOLD-PARA
           CLOSE SCANFILE.

       READ-TAG-PARA.
           OPEN I-O SCANFILE
           MOVE LK-KEY TO SC-TAG
           READ SCANFILE KEY IS SC-TAG
           IF WS-FILE-STATUS = "00"
               MOVE SC-ID TO LK-FIRST
           END-IF
           MOVE WS-FILE-STATUS TO WS-RESULT
           CLOSE SCANFILE.

       HAND-TAG-PARA.
           OPEN I-O SCANFILE
           MOVE LK-KEY TO SC-ID
           READ SCANFILE
           IF WS-FILE-STATUS = "00"
               MOVE SC-TAG TO WS-NUMBER
               ADD 5 TO SC-TAG
               REWRITE SC-RECORD
           END-IF
           IF WS-FILE-STATUS = "00"
               MOVE LK-COUNT TO SC-ID
               READ SCANFILE
           END-IF
           IF WS-FILE-STATUS = "00"
               MOVE WS-NUMBER TO SC-TAG
               REWRITE SC-RECORD
           END-IF
           MOVE WS-FILE-STATUS TO WS-RESULT
           PERFORM HOLD-PARA
           CLOSE SCANFILE.

      *> Wait LK-WAIT-MS milliseconds, holding what the call has locked.
       HOLD-PARA.
           COMPUTE WS-NANOSECONDS = LK-WAIT-MS * 1000000
           CALL "CBL_OC_NANOSLEEP" USING WS-NANOSECONDS.
