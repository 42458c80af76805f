      *> CNTAPP - service-style counter for ESFH transaction tests.
      *> LK-OP "I": create CNTFILEA and CNTFILEB with key LK-KEY = 0.
      *> LK-OP "A" / "B": in CNTFILEA / CNTFILEB open I-O, read LK-KEY,
      *> return the counter in LK-COUNTER, add 1, rewrite, close.
      *> LK-STATUS: the first file status that was not 00 (else 00).
       IDENTIFICATION DIVISION.
       PROGRAM-ID. CNTAPP.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT FA ASSIGN TO "CNTFILEA"
               ORGANIZATION INDEXED ACCESS RANDOM
               RECORD KEY FA-KEY FILE STATUS FS.
           SELECT FB ASSIGN TO "CNTFILEB"
               ORGANIZATION INDEXED ACCESS RANDOM
               RECORD KEY FB-KEY FILE STATUS FS.
       DATA DIVISION.
       FILE SECTION.
       FD FA.
       01 FA-REC.
          05 FA-KEY PIC X(6).
          05 FA-CNT PIC 9(10).
       FD FB.
       01 FB-REC.
          05 FB-KEY PIC X(6).
          05 FB-CNT PIC 9(10).
       WORKING-STORAGE SECTION.
       01 FS PIC XX.
       LINKAGE SECTION.
       01 LK-OP PIC X.
       01 LK-KEY PIC X(6).
       01 LK-COUNTER PIC 9(10).
       01 LK-STATUS PIC XX.
       PROCEDURE DIVISION USING LK-OP LK-KEY LK-COUNTER LK-STATUS.
           MOVE "00" TO LK-STATUS
           MOVE 0 TO LK-COUNTER
           EVALUATE LK-OP
           WHEN "I"
              OPEN OUTPUT FA PERFORM CHK
              MOVE LK-KEY TO FA-KEY MOVE 0 TO FA-CNT
              WRITE FA-REC PERFORM CHK
              CLOSE FA
              OPEN OUTPUT FB PERFORM CHK
              MOVE LK-KEY TO FB-KEY MOVE 0 TO FB-CNT
              WRITE FB-REC PERFORM CHK
              CLOSE FB
           WHEN "A"
              OPEN I-O FA PERFORM CHK
              MOVE LK-KEY TO FA-KEY
              READ FA PERFORM CHK
              IF LK-STATUS = "00"
                 MOVE FA-CNT TO LK-COUNTER
                 ADD 1 TO FA-CNT
                 REWRITE FA-REC PERFORM CHK
              END-IF
              CLOSE FA
           WHEN "B"
              OPEN I-O FB PERFORM CHK
              MOVE LK-KEY TO FB-KEY
              READ FB PERFORM CHK
              IF LK-STATUS = "00"
                 MOVE FB-CNT TO LK-COUNTER
                 ADD 1 TO FB-CNT
                 REWRITE FB-REC PERFORM CHK
              END-IF
              CLOSE FB
           END-EVALUATE
           GOBACK.
       CHK.
           IF FS NOT = "00" AND LK-STATUS = "00"
              MOVE FS TO LK-STATUS
           END-IF.
